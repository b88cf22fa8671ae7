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
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The whole Llama 3.1 8B trained by the CUDA engine on one H200 under a 16 GiB cap at 32,768 tokens with
 * {@code train --offload parameters,optimizer,checkpoints} (bench/results/offload-8b-32k-16gib-h200.jsonl): the
 * engine's trackers give each category's peak over the step, on the GPU and on the host. The planner's
 * {@code longtune} profile for the same stack ({@code plan --stack zero-offload --checkpointing offload
 * --attention fa2 --liger all --precision bf16 --host-ram 256GiB}) must give, per category, its largest value over
 * the phases within 5% on the GPU and 10% on the host, and so must the sums.
 *
 * <p>The planner's phases are the step's peak moments; the trackers' per-category peaks can come from another moment.
 * One does here: the attention backward's FP32 dQ accumulator and row deltas (cuda/CudaAttention: T·(hq·d + hq)·4
 * bytes of workspace) live in the attention moment of a layer's backward, while the layer's worst moment, the one
 * the planner counts, is its MLP backward. {@link #ATTENTION_WORKSPACE} adds it by that formula.
 */
class MeasuredOffloadTest {
    static final long GIB = 1L << 30;

    /** Attention backward's FP32 dQ accumulator and row deltas at 32,768 tokens: T·(hq·d + hq)·4 bytes. */
    static final long ATTENTION_WORKSPACE = 32_768L * (32 * 128 + 32) * 4;

    static JsonNode step(int n) { return step("offload-8b-32k-16gib-h200.jsonl", n); }

    /** Step {@code n}'s JSON line of a run's file under bench/results. */
    static JsonNode step(String file, int n) {
        Path p = Path.of("..", "bench", "results", file);
        try {
            ObjectMapper json = new ObjectMapper();
            for (String line : Files.readAllLines(p)) {
                JsonNode row = json.readTree(line);
                if (row.has("step") && row.get("step").asInt() == n) {
                    return row;
                }
            }
        } catch (Exception e) {
            throw new IllegalStateException("cannot read " + p.toAbsolutePath() + ": " + e.getMessage(), e);
        }
        throw new IllegalStateException("no step " + n + " in " + p);
    }

    static MemoryPlan plan() {
        NodeProfile node = NodeCatalog.get("1xH200").withHostRam(256 * GIB);
        TechniqueSet s = Stacks.named("zero-offload", node, EngineProfile.LONGTUNE)
                .withCheckpointing(Checkpointing.OFFLOAD).withAttention(Attention.FLASH_ATTENTION_2)
                .withLiger(EnumSet.allOf(LigerOp.class)).withPrecision(Precision.BF16);
        return new MemoryPlanner(EngineProfile.LONGTUNE).plan(ModelCatalog.get("llama-3.1-8b"), node, s, 32_768);
    }

    /** Each category's largest planned value over the phases: what a per-category tracker peak measures. */
    static Map<MemoryCategory, Long> plannedPeaks(Map<Phase, Breakdown> byPhase) {
        Map<MemoryCategory, Long> out = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            out.put(c, byPhase.values().stream().mapToLong(b -> b.bytes(c)).max().orElse(0));
        }
        return out;
    }

    static long measured(JsonNode step, String place, MemoryCategory c) {
        return step.get(place).get(c.name().toLowerCase(java.util.Locale.ROOT)).asLong();
    }

    /**
     * Each category's plan, less what the trackers cannot see ({@code untracked}), within {@code tolerance} of the
     * measured peak (under 1 MiB where nothing was measured), and the sums likewise; returns {measured, planned} sums.
     */
    static long[] assertCategories(String where, JsonNode step, String field, Map<MemoryCategory, Long> planned,
                                   double tolerance, Map<MemoryCategory, Long> untracked) {
        long measuredSum = 0, plannedSum = 0;
        for (MemoryCategory c : MemoryCategory.values()) {
            long m = measured(step, field, c), p = planned.get(c) - untracked.getOrDefault(c, 0L);
            if (m == 0) {
                assertThat(p).as(where + " " + c).isBetween(0L, 1L << 20);
            } else {
                assertThat((double) p).as(where + " " + c).isCloseTo(m, within(tolerance * m));
            }
            measuredSum += m;
            plannedSum += p;
        }
        assertThat((double) plannedSum).as(where + " sum").isCloseTo(measuredSum, within(tolerance * measuredSum));
        return new long[] {measuredSum, plannedSum};
    }

    @Test
    void gpuCategoriesAndTotalWithinFivePercent() {
        JsonNode step = step(2);
        MemoryPlan plan = plan();
        Map<MemoryCategory, Long> planned = plannedPeaks(plan.gpu());
        // cuBLAS's workspace is the planner's and not the trackers'; the attention moment's is the trackers' only
        assertCategories("GPU", step, "memory", planned, 0.05,
                Map.of(MemoryCategory.WORKSPACE, (32L << 20) - ATTENTION_WORKSPACE));
        // the slots, checkpoints in flight and the recomputed layer are exact
        for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.CHECKPOINTS,
                MemoryCategory.ACTIVATIONS, MemoryCategory.LOGITS)) {
            assertThat(planned.get(c)).as("GPU " + c).isEqualTo(measured(step, "memory", c));
        }
        // workspace: cuBLAS's 32 MiB planned (not tracked), the attention accumulator measured (not a planned
        // moment), and under 1 MiB of the micro-batch's ids, positions, labels and sequence starts kept on the GPU
        long workspace = measured(step, "memory", MemoryCategory.WORKSPACE);
        assertThat(planned.get(MemoryCategory.WORKSPACE)).isEqualTo((32L << 20) + 4L * 32_768); // and the loss's T·4
        assertThat(workspace - ATTENTION_WORKSPACE).isBetween(0L, 1L << 20);
        // the simultaneous peak (backward) lies below what the capped allocator reserved, which lies below the cap
        long reserved = step.get("gpu_allocator").get("peak_reserved").asLong();
        assertThat(plan.gpuPeakPhase()).isEqualTo(Phase.BACKWARD);
        assertThat(plan.gpuReservedBytes()).isLessThanOrEqualTo(reserved);
        assertThat(reserved).isLessThanOrEqualTo(16 * GIB);
    }

    @Test
    void hostCategoriesAndTotalWithinTenPercent() {
        JsonNode step = step(2);
        MemoryPlan plan = plan();
        Map<MemoryCategory, Long> planned = plannedPeaks(plan.host());
        // the process itself (2 GiB planned) is not a tensor: the trackers do not count it
        long[] sums = assertCategories("host", step, "host_memory", planned, 0.10,
                Map.of(MemoryCategory.OTHER, planned.get(MemoryCategory.OTHER)));
        long measuredSum = sums[0], plannedSum = sums[1];
        // every host category is exact: 16-bit weights and gradients (e·N each), FP32 master, m, v (12·N), all 32
        // layer inputs, and the per-token losses read back (4·T); no FP32 gradients: the host AdamW reads the
        // 16-bit ones in place
        assertThat(plannedSum).isEqualTo(measuredSum);
        assertThat(plan.host().get(Phase.OPTIMIZER).bytes(MemoryCategory.WORKSPACE)).isZero();
        assertThat(plan.host().get(Phase.LOSS).bytes(MemoryCategory.WORKSPACE)).isEqualTo(4L * 32_768);
    }

    @Test
    void bothStepsMeasuredTheSame() {
        // the first step allocates the slots and pinned buffers, later ones reuse them: the peaks do not move (the
        // first step's workspace peak is 256 KiB lower: two of the micro-batch's T·4 arrays join the GPU's upload cache
        // only after it)
        assertThat(step(2).get("memory")).isEqualTo(step(3).get("memory"));
        assertThat(step(1).get("host_memory")).isEqualTo(step(3).get("host_memory"));
    }

    @Test
    void theWhole8bAt128kWith20LayersResidentAgreesWithThePlannerCategoryByCategory() {
        // one H200 of the one-GPU machine (125 GiB host), no cap below the GPU's own: kept attention, 20 layers and the
        // embedding resident, checkpoints back a layer ahead, the last layer kept (bench/results/
        // offload-8b-128k-resident20-2026-12-02: `plan ... --keep-attention --resident-layers 20 --resident-embedding
        // --prefetch-checkpoints --keep-last-layer --host-ram 125GiB`)
        JsonNode step = step("offload-8b-128k-resident20-2026-12-02/m/train-131072.jsonl", 2);
        NodeProfile node = NodeCatalog.get("1xH200").withHostRam(125 * GIB);
        TechniqueSet s = Stacks.named("zero-offload", node, EngineProfile.LONGTUNE)
                .withCheckpointing(Checkpointing.OFFLOAD).withAttention(Attention.FLASH_ATTENTION_2)
                .withLiger(EnumSet.allOf(LigerOp.class)).withPrecision(Precision.BF16).withKeepAttention(true)
                .withResidentLayers(20).withResidentEmbedding(true).withPrefetchCheckpoints(true).withKeepLastLayer(true);
        MemoryPlan plan = new MemoryPlanner(EngineProfile.LONGTUNE).plan(ModelCatalog.get("llama-3.1-8b"), node, s, 131_072);
        Map<MemoryCategory, Long> gpu = plannedPeaks(plan.gpu()), host = plannedPeaks(plan.host());
        // on the GPU: the 20 resident layers' and the embedding's weights, gradients and FP32 state, the slots of the
        // offloaded ones, checkpoints in flight, the kept and recomputed layers' tensors and the loss's logits: exact
        for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.OPTIMIZER,
                MemoryCategory.CHECKPOINTS, MemoryCategory.ACTIVATIONS, MemoryCategory.LOGITS)) {
            assertThat(gpu.get(c)).as("GPU " + c).isEqualTo(measured(step, "memory", c));
        }
        // workspace: the attention moment's dQ accumulator (not a planned moment, as at 32K) and the micro-batch's
        // arrays; cuBLAS's 32 MiB is planned, not tracked
        long accumulator = 131_072L * (32 * 128 + 32) * 4;
        assertThat(measured(step, "memory", MemoryCategory.WORKSPACE) - accumulator).isBetween(0L, 4L << 20);
        // on the host, every category as planned: the 12 offloaded layers' (and the head's) 16-bit weights, gradients
        // and FP32 state, all 32 layers' checkpoints with their kept attention; the loss read-back holds the valid
        // tokens only (the document's last token predicts nothing: 4 bytes fewer than the planner's 4·T)
        for (MemoryCategory c : EnumSet.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.OPTIMIZER,
                MemoryCategory.CHECKPOINTS, MemoryCategory.ACTIVATIONS)) {
            assertThat(host.get(c)).as("host " + c).isEqualTo(measured(step, "host_memory", c));
        }
        assertThat(host.get(MemoryCategory.WORKSPACE) - measured(step, "host_memory", MemoryCategory.WORKSPACE)).isEqualTo(4L);
        // the simultaneous peak lies below what the allocator reserved, which lies below the GPU
        long reserved = step.get("gpu_allocator").get("peak_reserved").asLong();
        assertThat(plan.gpuReservedBytes()).isLessThanOrEqualTo(reserved);
        assertThat(reserved).isLessThanOrEqualTo(node.gpu().memoryBytes());
    }
}
