package dev.longtune.plan;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The whole Llama 3.1 8B trained with ZeRO-3 data parallelism on the 2-GPU machine ({@code bash bench/dp-8b.sh
 * CONTEXT 48GiB}: {@code train --gpus 2 --offload parameters,optimizer,checkpoints}), each rank's trackers against the
 * planner's longtune profile for the same stack on a 2×H200 node: per GPU, each category's largest planned value over
 * the phases (what a per-category peak measures), and per node, the host's categories summed over the ranks.
 */
class MeasuredShardedTest {
    static final long GIB = 1L << 30;

    static JsonNode firstStep(String file) throws Exception {
        for (String line : Files.readAllLines(Path.of("..", "bench", "results", file))) {
            JsonNode row = new ObjectMapper().readTree(line);
            if (row.has("step")) {
                return row;
            }
        }
        throw new IllegalStateException("no step in " + file);
    }

    static MemoryPlan plan(long context) {
        NodeProfile node = NodeCatalog.get("2xH200").withHostRam(256 * GIB);
        TechniqueSet s = Stacks.named("zero-offload", node, EngineProfile.LONGTUNE)
                .withCheckpointing(Checkpointing.OFFLOAD).withAttention(Attention.FLASH_ATTENTION_2)
                .withLiger(EnumSet.allOf(LigerOp.class)).withPrecision(Precision.BF16);
        return new MemoryPlanner(EngineProfile.LONGTUNE).plan(ModelCatalog.get("llama-3.1-8b"), node, s, context);
    }

    @ParameterizedTest(name = "{1} tokens per GPU")
    @CsvSource({"dp-8b-2x32k-48gib-h200.jsonl, 32768", "dp-8b-2x128k-48gib-h200.jsonl, 131072"})
    void eachRanksGpuAndTheNodesHostAgreeWithThePlanner(String file, long context) throws Exception {
        JsonNode step = firstStep(file);
        MemoryPlan plan = plan(context);
        Map<MemoryCategory, Long> gpu = MeasuredOffloadTest.plannedPeaks(plan.gpu());
        Map<MemoryCategory, Long> host = MeasuredOffloadTest.plannedPeaks(plan.host());
        assertThat(step.get("ranks")).hasSize(2);
        long hostMeasured = 0;
        for (JsonNode rank : step.get("ranks")) {
            // exact: the fixed slots (the embedding/head slot and the ring of two layers, weights and gradients),
            // checkpoints in flight, the recomputed layer's activations and the loss's logits
            for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.CHECKPOINTS,
                    MemoryCategory.ACTIVATIONS, MemoryCategory.LOGITS)) {
                assertThat(gpu.get(c)).as("GPU " + c).isEqualTo(MeasuredOffloadTest.measured(rank, "memory", c));
            }
            // the collective buffers, allocated once: a layer's chunk per rank, within 5% (the planner rounds the
            // chunk up; the engine sizes it from the largest layer group)
            long comm = MeasuredOffloadTest.measured(rank, "memory", MemoryCategory.COMM);
            assertThat((double) gpu.get(MemoryCategory.COMM)).isCloseTo(comm, within(0.05 * comm));
            for (MemoryCategory c : MemoryCategory.values()) {
                hostMeasured += MeasuredOffloadTest.measured(rank, "host_memory", c);
            }
            // what the capped allocator reserved stays under the cap, above the planner's least
            long reserved = rank.get("gpu_allocator").get("peak_reserved").asLong();
            assertThat(reserved).isBetween(plan.gpuReservedBytes(), 48 * GIB);
        }
        // the node's host: both ranks' shards, AdamW state and checkpoints; the process itself is not a tensor
        long hostPlanned = plan.hostPeakBytes() - host.get(MemoryCategory.OTHER);
        assertThat((double) hostPlanned).isCloseTo(hostMeasured, within(0.01 * hostMeasured));
    }
}
