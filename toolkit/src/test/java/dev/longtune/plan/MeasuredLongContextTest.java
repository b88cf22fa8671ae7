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
 * The whole Llama 3.1 8B on one H200, the MLP in 8K-token tiles and everything offloaded, against the planner's
 * longtune profile for the same stack: 131,072 tokens capped at 16 GiB ({@code bash bench/long-context-8b.sh 131072
 * 16GiB 8192 1}), 262,144 tokens capped at 48 GiB ({@code bash bench/long-context-8b.sh 262144 48GiB 8192 1}), and the
 * measured search for the longest context under 16 GiB ({@code bash bench/long-context-8b.sh --measure 16GiB 135168
 * 143360 2048}), whose boundary brackets the planner's.
 */
class MeasuredLongContextTest {
    static final long CAP = 16L << 30;

    static JsonNode json(String file) throws Exception {
        return new ObjectMapper().readTree(Files.readAllLines(Path.of("..", "bench", "results", file)).get(0));
    }

    static MemoryPlan plan(long context) { return plan(context, CAP); }

    static MemoryPlan plan(long context, long cap) {
        GpuProfile h200 = GpuCatalog.get("H200");
        // the cap bounds the allocator; the CUDA context and cuBLAS's workspace lie outside it (cli/PlannerAdvice)
        GpuProfile capped = h200.withMemory("H200 capped at " + (cap >> 30) + " GiB", cap + GpuRuntime.cudaContextBytes(h200)
                + GpuRuntime.cublasWorkspaceBytes(h200));
        NodeProfile node = new NodeProfile("1xH200-" + (cap >> 30) + "GiB", capped, 1, 256L << 30, 16, 20);
        TechniqueSet s = Stacks.named("engine", node, EngineProfile.LONGTUNE).withPrecision(Precision.BF16).withSequenceTile(8192);
        return new MemoryPlanner(EngineProfile.LONGTUNE).plan(ModelCatalog.get("llama-3.1-8b"), node, s, context);
    }

    @Test
    void theTiledStepAt128kIsPlannedByCategoryAndFitsAsPlanned() throws Exception {
        assertPlannedByCategory("long-8b-128k-16gib-tiled-h200.jsonl", 131_072, CAP, 2L << 20);
    }

    @Test
    void theTiledStepAt256kUnder48GibIsPlannedByCategoryAndFitsAsPlanned() throws Exception {
        assertPlannedByCategory("long-8b-256k-48gib-tiled-h200.jsonl", 262_144, 48L << 30, 4L << 20);
    }

    /** metadata: the batch metadata the engine tracks as workspace and the planner leaves out (grows with tokens). */
    private static void assertPlannedByCategory(String file, long tokens, long cap, long metadata) throws Exception {
        JsonNode step = json(file);
        assertThat(step.get("tokens").asLong()).isEqualTo(tokens);
        MemoryPlan plan = plan(tokens, cap);
        Map<MemoryCategory, Long> gpu = MeasuredOffloadTest.plannedPeaks(plan.gpu());
        Map<MemoryCategory, Long> host = MeasuredOffloadTest.plannedPeaks(plan.host());
        // to the byte: the slots (the ring; the embedding/head slot, away during the layers' backward), the checkpoint
        // in flight, the recomputed layer with its one-tile MLP tensors and the attention moment's gradients, the loss
        for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.CHECKPOINTS,
                MemoryCategory.ACTIVATIONS, MemoryCategory.LOGITS)) {
            assertThat(gpu.get(c)).as("GPU " + c).isEqualTo(MeasuredOffloadTest.measured(step, "memory", c));
        }
        // workspace: the attention backward's FP32 dQ accumulator and deltas planned exactly, cuBLAS's 32 MiB planned
        // and not tracked, a few MiB of batch metadata tracked and not planned
        long workspace = MeasuredOffloadTest.measured(step, "memory", MemoryCategory.WORKSPACE);
        long attention = tokens * (4096 + 32) * 4;
        assertThat(gpu.get(MemoryCategory.WORKSPACE)).isEqualTo(attention + (32L << 20));
        assertThat(workspace - attention).isBetween(0L, metadata);
        for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.OPTIMIZER,
                MemoryCategory.CHECKPOINTS)) {
            assertThat(host.get(c)).as("host " + c).isEqualTo(MeasuredOffloadTest.measured(step, "host_memory", c));
        }
        // it trained under the cap, and the planner says it fits
        assertThat(step.get("gpu_allocator").get("peak_reserved").asLong()).isLessThanOrEqualTo(cap);
        assertThat(plan.fitsGpu()).isTrue();
    }

    @Test
    void theMeasuredBoundaryBracketsThePlannersMaxContext() throws Exception {
        // one JSON object over several lines; the first, coarse search found 155,648 out of memory
        JsonNode coarse = new ObjectMapper().readTree(Files.readString(Path.of("..", "bench", "results", "max-context-8b-16gib-tiled-h200.json")));
        assertThat(coarse.get("first_failed").asLong()).isEqualTo(155_648);
        JsonNode search = new ObjectMapper().readTree(Files.readString(Path.of("..", "bench", "results", "max-context-8b-16gib-fine-h200.json")));
        long trained = search.get("measured_max_context").asLong(), failed = search.get("first_failed").asLong();
        assertThat(trained).isEqualTo(137_216);
        assertThat(failed).isEqualTo(139_264);
        for (JsonNode t : search.get("trials")) {
            boolean fits = t.get("context").asLong() <= trained;
            assertThat(t.get("trained").asBoolean()).as(t.toString()).isEqualTo(fits);
            if (fits) {
                assertThat(t.get("reserved_peak_bytes").asLong()).isLessThanOrEqualTo(CAP);
            } else {
                assertThat(t.get("failure").asText()).contains("out of memory").contains("cap of 16.00 GiB");
            }
        }
        // the planner's boundary lies between the longest that trained and the shortest that did not (within 1.5%
        // of both), and it says so of both ends
        var planner = new ContextSearch(EngineProfile.LONGTUNE);
        long planned = planner.maxContext(ModelCatalog.get("llama-3.1-8b"), plan(1).node(), plan(1).stack());
        assertThat(planned).isBetween(trained, failed - 1);
        assertThat(search.get("planned_max_context").asLong()).isEqualTo(planned);
        assertThat(plan(trained).fitsGpu()).isTrue();
        assertThat(plan(failed).fitsGpu()).isFalse();
    }
}
