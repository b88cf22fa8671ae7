package dev.longtune.plan;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.GpuCatalog;
import dev.longtune.config.GpuProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The whole Llama 3.1 8B at 131,072 tokens on one H200 capped at 16 GiB, the MLP in 8K-token tiles and everything
 * offloaded ({@code bash bench/long-context-8b.sh 131072 16GiB 8192 1}), against the planner's longtune profile for
 * the same stack; and the measured search's first trial past it ({@code --measure 16GiB 155648 …}), which ran out of
 * memory where the planner says it must.
 */
class MeasuredLongContextTest {
    static final long CAP = 16L << 30;

    static JsonNode json(String file) throws Exception {
        return new ObjectMapper().readTree(Files.readAllLines(Path.of("..", "bench", "results", file)).get(0));
    }

    static MemoryPlan plan(long context) {
        GpuProfile h200 = GpuCatalog.get("H200");
        // the cap bounds the allocator; the CUDA context and cuBLAS's workspace lie outside it (cli/PlannerAdvice)
        GpuProfile capped = h200.withMemory("H200 capped at 16 GiB", CAP + GpuRuntime.cudaContextBytes(h200)
                + GpuRuntime.cublasWorkspaceBytes(h200));
        NodeProfile node = new NodeProfile("1xH200-16GiB", capped, 1, 256L << 30, 16, 20);
        TechniqueSet s = Stacks.named("engine", node, EngineProfile.LONGTUNE).withPrecision(Precision.BF16).withSequenceTile(8192);
        return new MemoryPlanner(EngineProfile.LONGTUNE).plan(ModelCatalog.get("llama-3.1-8b"), node, s, context);
    }

    @Test
    void theTiledStepAt128kIsPlannedByCategoryAndFitsAsPlanned() throws Exception {
        JsonNode step = json("long-8b-128k-16gib-tiled-h200.jsonl");
        assertThat(step.get("tokens").asLong()).isEqualTo(131_072);
        MemoryPlan plan = plan(131_072);
        Map<MemoryCategory, Long> gpu = MeasuredOffloadTest.plannedPeaks(plan.gpu());
        Map<MemoryCategory, Long> host = MeasuredOffloadTest.plannedPeaks(plan.host());
        // to the byte: the slots (the ring; the embedding/head slot, away during the layers' backward), the checkpoint
        // in flight, the recomputed layer with its one-tile MLP tensors and the attention moment's gradients, the loss
        for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.CHECKPOINTS,
                MemoryCategory.ACTIVATIONS, MemoryCategory.LOGITS)) {
            assertThat(gpu.get(c)).as("GPU " + c).isEqualTo(MeasuredOffloadTest.measured(step, "memory", c));
        }
        // workspace: the attention backward's FP32 dQ accumulator and deltas planned exactly, cuBLAS's 32 MiB planned
        // and not tracked, under 2 MiB of batch metadata tracked and not planned
        long workspace = MeasuredOffloadTest.measured(step, "memory", MemoryCategory.WORKSPACE);
        long attention = 131_072L * (4096 + 32) * 4;
        assertThat(gpu.get(MemoryCategory.WORKSPACE)).isEqualTo(attention + (32L << 20));
        assertThat(workspace - attention).isBetween(0L, 2L << 20);
        for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.OPTIMIZER,
                MemoryCategory.CHECKPOINTS)) {
            assertThat(host.get(c)).as("host " + c).isEqualTo(MeasuredOffloadTest.measured(step, "host_memory", c));
        }
        // it trained under the cap, and the planner says it fits
        assertThat(step.get("gpu_allocator").get("peak_reserved").asLong()).isLessThanOrEqualTo(CAP);
        assertThat(plan.fitsGpu()).isTrue();
    }

    @Test
    void theMeasuredBoundaryBracketsThePlannersMaxContext() throws Exception {
        // one JSON object over several lines
        JsonNode search = new ObjectMapper().readTree(Files.readString(Path.of("..", "bench", "results", "max-context-8b-16gib-tiled-h200.json")));
        long failed = search.get("first_failed").asLong();
        assertThat(failed).isEqualTo(155_648);
        assertThat(search.get("trials").get(0).get("failure").asText()).contains("out of memory").contains("cap of 16.00 GiB");
        // 131,072 trained (above), 155,648 did not: the planner's boundary lies between, and says so of both ends
        var planner = new ContextSearch(EngineProfile.LONGTUNE);
        long planned = planner.maxContext(ModelCatalog.get("llama-3.1-8b"), plan(1).node(), plan(1).stack());
        assertThat(planned).isBetween(131_072L, failed - 1);
        assertThat(plan(failed).fitsGpu()).isFalse();
    }
}
