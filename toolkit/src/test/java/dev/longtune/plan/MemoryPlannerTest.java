package dev.longtune.plan;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.PinnedMemory;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.api.Test;

import java.util.EnumSet;

import static dev.longtune.tensor.MemoryCategory.ACTIVATIONS;
import static dev.longtune.tensor.MemoryCategory.CHECKPOINTS;
import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.OPTIMIZER;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Each planner term against a calculation written out by hand from the architecture. */
class MemoryPlannerTest {
    static final long GiB = 1L << 30, MiB = 1L << 20;
    static final long N = 8_030_261_248L, LP = 218_112_000L, H = 4096, F = 14336, V = 128_256;
    final ModelConfig llama = ModelCatalog.get("llama-3.1-8b");
    final NodeProfile v100 = NodeCatalog.get("study-8xV100");
    final NodeProfile a6000 = NodeCatalog.get("study-4xA6000");
    final MemoryPlanner hf = new MemoryPlanner(EngineProfile.HF_DEEPSPEED);
    final MemoryPlanner longtune = new MemoryPlanner(EngineProfile.LONGTUNE);

    static long term(Breakdown b, String name) {
        return b.terms().stream().filter(t -> t.name().startsWith(name)).mapToLong(Term::bytes).sum();
    }

    @Test
    void studyStackOnV100BackwardByHand() {
        long s = 32_768;
        MemoryPlan plan = hf.plan(llama, v100, Stacks.study(v100, EngineProfile.HF_DEEPSPEED), s);
        assertThat(plan.gpuPeakPhase()).isEqualTo(Phase.BACKWARD);
        Breakdown b = plan.gpuAtPeak();
        assertThat(term(b, "gathered layer")).isEqualTo(2 * LP);
        assertThat(term(b, "prefetch bucket")).isEqualTo(2 * (9 * H * H / 10));
        assertThat(b.bytes(GRADS)).isEqualTo(2 * LP);
        assertThat(b.bytes(CHECKPOINTS)).isEqualTo(2 * s * H * 2);
        // saved per token (fp16, Liger, SDPA with K/V repeated to 32 heads):
        //   attention half: norm out h + rotated q + repeated k, v (2q) + output q, all ×2 B; inverse RMS 4 B;
        //   log-sum-exp 32 heads × 4 B.  MLP: h1 and norm out 2h ×2 B + 4 B; gate, up, product 3f ×2 B.
        long attention = (H + H + 2 * H + H) * 2 + 4 + 32 * 4;
        long mlp = 2 * H * 2 + 4 + 3 * F * 2;
        assertThat(term(b, "recomputed layer's saved tensors")).isEqualTo(s * (attention + mlp));
        // incoming gradient h and d(product) f, ×2 B
        assertThat(term(b, "gradients at the worst moment")).isEqualTo(s * (H + F) * 2);
        assertThat(b.bytes(MemoryCategory.COMM)).isEqualTo(H * H * 2);
        assertThat(b.bytes(WEIGHTS) + b.bytes(GRADS) + b.bytes(CHECKPOINTS) + b.bytes(ACTIVATIONS)
                + b.bytes(MemoryCategory.COMM) + b.bytes(MemoryCategory.WORKSPACE) + b.bytes(MemoryCategory.OTHER))
                .isEqualTo(plan.gpuPeakBytes());
        // batch ids (input, label, position: int64) and Hugging Face's RoPE cos/sin (s × d each, fp16)
        assertThat(b.bytes(MemoryCategory.OTHER)).isEqualTo(s * (3 * 8 + 2 * 128 * 2));
    }

    @Test
    void studyStackOnV100HostByHand() {
        MemoryPlan plan = hf.plan(llama, v100, Stacks.study(v100, EngineProfile.HF_DEEPSPEED), 32_768);
        Breakdown host = plan.hostAtPeak();
        long partition = N / 8; // 1,003,782,656 elements per rank
        assertThat(host.bytes(OPTIMIZER)).isEqualTo(8 * 12 * partition);
        // pinned FP32 gradients per rank, one buffer per sub-group. Weights with decay: embedding and LM head
        // 65,667,072 each, 32 layers × 27,262,976 → 1,003,749,376 elements, one sub-group (it reaches 1e9
        // at the last parameter): 4,014,997,504 B → 4 GiB. Norm weights (no decay): 65 × 512 elements
        // → 133,120 B → 256 KiB.
        assertThat(term(host, "FP32 gradient partitions")).isEqualTo(8 * (4 * GiB + 256 * 1024));
        // pinned 2-byte weights and gradient buffer: 2,007,565,312 B → 2 GiB each, per rank
        assertThat(term(host, "compute-precision weight partitions")).isEqualTo(8 * 2 * GiB);
        assertThat(term(host, "compute-precision gradient partition")).isEqualTo(8 * 2 * GiB);
        // 32 layer inputs of 32768 × 4096 × 2 B = 256 MiB (already a power of two) per rank
        assertThat(host.bytes(CHECKPOINTS)).isEqualTo(8 * 32 * 256 * MiB);
        assertThat(host.bytes(MemoryCategory.OTHER)).isEqualTo(8 * HostMemory.PROCESS_RUNTIME_HF);
    }

    @Test
    void cachingAllocatorRoundsCheckpointsUpAndThePoolDoesNot() {
        TechniqueSet study = Stacks.study(v100, EngineProfile.HF_DEEPSPEED);
        long s = 49_152; // 384 MiB per layer input
        long caching = hf.plan(llama, v100, study, s).hostAtPeak().bytes(CHECKPOINTS);
        long pool = hf.plan(llama, v100, study.withPinnedMemory(PinnedMemory.POOL), s).hostAtPeak().bytes(CHECKPOINTS);
        assertThat(caching).isEqualTo(8L * 32 * 512 * MiB);
        assertThat(pool).isEqualTo(8L * 32 * 384 * MiB);
    }

    @Test
    void zeroStagesPartitionWhatTheyShouldOnTheGpu() {
        TechniqueSet base = Stacks.baseline(a6000, EngineProfile.HF_DEEPSPEED)
                .withAttention(Attention.FLASH_ATTENTION_2).withCheckpointing(Checkpointing.DEVICE);
        long s = 1024;
        Breakdown z0 = hf.plan(llama, a6000, base.withZero(0, false, false), s).gpu().get(Phase.OPTIMIZER);
        assertThat(z0.bytes(WEIGHTS)).isEqualTo(2 * N);
        assertThat(z0.bytes(GRADS)).isEqualTo(2 * N);
        assertThat(z0.bytes(OPTIMIZER)).isEqualTo(12 * N);
        Breakdown z1 = hf.plan(llama, a6000, base.withZero(1, false, false), s).gpu().get(Phase.OPTIMIZER);
        assertThat(z1.bytes(OPTIMIZER)).isEqualTo(12 * N / 4);
        assertThat(z1.bytes(GRADS)).isEqualTo(2 * N);
        Breakdown z2 = hf.plan(llama, a6000, base.withZero(2, false, false), s).gpu().get(Phase.OPTIMIZER);
        assertThat(z2.bytes(GRADS)).isEqualTo(2 * N / 4);
        Breakdown z3 = hf.plan(llama, a6000, base.withZero(3, false, false), s).gpu().get(Phase.OPTIMIZER);
        assertThat(z3.bytes(WEIGHTS)).isEqualTo(2 * N / 4);
        Breakdown offloaded = hf.plan(llama, a6000, base.withZero(3, true, true), s).gpu().get(Phase.OPTIMIZER);
        assertThat(offloaded.bytes(WEIGHTS) + offloaded.bytes(GRADS) + offloaded.bytes(OPTIMIZER)).isZero();
        Breakdown fp32 = hf.plan(llama, a6000, base.withZero(0, false, false).withPrecision(Precision.FP32), s)
                .gpu().get(Phase.OPTIMIZER);
        assertThat(fp32.bytes(OPTIMIZER)).isEqualTo(8 * N); // m and v only: the weights are the master copy
        assertThat(fp32.bytes(WEIGHTS)).isEqualTo(4 * N);
    }

    @Test
    void checkpointModesHoldLayerInputsWhereTheySay() {
        TechniqueSet base = Stacks.named("all", a6000, EngineProfile.HF_DEEPSPEED);
        long s = 8192, input = s * H * 2;
        assertThat(hf.plan(llama, a6000, base.withCheckpointing(Checkpointing.DEVICE), s).gpu().get(Phase.BACKWARD)
                .bytes(CHECKPOINTS)).isEqualTo(32 * input);
        assertThat(hf.plan(llama, a6000, base, s).gpu().get(Phase.BACKWARD).bytes(CHECKPOINTS)).isEqualTo(2 * input);
        assertThat(hf.plan(llama, a6000, base.withCheckpointing(Checkpointing.DEVICE), s).hostAtPeak()
                .bytes(CHECKPOINTS)).isZero();
        // without checkpointing every layer keeps its input and saved tensors
        MemoryPlan none = hf.plan(llama, a6000, base.withCheckpointing(Checkpointing.NONE), s);
        MemoryPlan device = hf.plan(llama, a6000, base.withCheckpointing(Checkpointing.DEVICE), s);
        assertThat(none.gpuAtPeak().bytes(ACTIVATIONS)).isGreaterThan(20 * device.gpuAtPeak().bytes(ACTIVATIONS));
    }

    @Test
    void fusedLinearCrossEntropyNeverHoldsTheFullLogits() {
        TechniqueSet all = Stacks.named("all", a6000, EngineProfile.HF_DEEPSPEED);
        long s = 131_072;
        Breakdown fused = hf.plan(llama, a6000, all, s).gpu().get(Phase.LOSS);
        // Liger: chunk = next_pow2(ceil(131072 / ceil(128256 / 4096))) = next_pow2(4096) = 4096 tokens
        assertThat(fused.bytes(MemoryCategory.LOGITS)).isEqualTo(4096L * V * 2);
        EnumSet<LigerOp> noFlce = EnumSet.of(LigerOp.RMS_NORM, LigerOp.ROPE, LigerOp.SWIGLU);
        Breakdown eager = hf.plan(llama, a6000, all.withLiger(noFlce), s).gpu().get(Phase.LOSS);
        // bf16 logits, their FP32 upcast and the FP32 log-softmax: s × V × (2 + 4 + 4)
        assertThat(eager.bytes(MemoryCategory.LOGITS)).isEqualTo(s * V * 10);
    }

    @Test
    void eagerAttentionGrowsWithTheSquareOfTheContext() {
        TechniqueSet eager = Stacks.named("all", a6000, EngineProfile.HF_DEEPSPEED).withAttention(Attention.EAGER);
        long at4k = hf.plan(llama, a6000, eager, 4096).gpuPeakBytes();
        long at8k = hf.plan(llama, a6000, eager, 8192).gpuPeakBytes();
        long at16k = hf.plan(llama, a6000, eager, 16384).gpuPeakBytes();
        // second differences of a quadratic: (at16k − at8k) ≈ 4 × (at8k − at4k) once s² dominates
        assertThat((double) (at16k - at8k) / (at8k - at4k)).isBetween(3.0, 4.0);
    }

    @Test
    void memoryNeverShrinksAsTheContextGrows() {
        for (String stack : Stacks.NAMES) {
            TechniqueSet t = Stacks.named(stack, v100, EngineProfile.HF_DEEPSPEED);
            if (!t.problems(v100, EngineProfile.HF_DEEPSPEED).isEmpty()) {
                continue; // 'engine' asks for FlashAttention-2, which hf-deepspeed cannot run on a V100
            }
            long previousGpu = 0, previousHost = 0;
            for (long s = 1024; s <= 1 << 20; s += s / 3) {
                MemoryPlan p = hf.plan(llama, v100, t, s);
                assertThat(p.gpuPeakBytes()).as(stack + " at " + s).isGreaterThanOrEqualTo(previousGpu);
                assertThat(p.hostPeakBytes()).as(stack + " at " + s).isGreaterThanOrEqualTo(previousHost);
                previousGpu = p.gpuPeakBytes();
                previousHost = p.hostPeakBytes();
            }
        }
    }

    @Test
    void longtuneProfileHoldsLessThanTheStudysStack() {
        long s = 131_072;
        MemoryPlan theirs = hf.plan(llama, a6000, Stacks.study(a6000, EngineProfile.HF_DEEPSPEED), s);
        MemoryPlan ours = longtune.plan(llama, a6000, Stacks.study(a6000, EngineProfile.LONGTUNE), s);
        assertThat(ours.hostPeakBytes()).isLessThan(theirs.hostPeakBytes());
        // exact-size pool: 4 ranks × 32 inputs × 131072 × 4096 × 2 B, no rounding
        assertThat(ours.hostAtPeak().bytes(CHECKPOINTS)).isEqualTo(4L * 32 * s * H * 2);
    }

    @Test
    void badContextIsRefused() {
        TechniqueSet t = Stacks.study(v100, EngineProfile.HF_DEEPSPEED);
        assertThatThrownBy(() -> hf.plan(llama, v100, t, 0)).hasMessageContaining("context must be a positive");
        assertThatThrownBy(() -> hf.plan(llama, v100, t.withPrecision(Precision.BF16), 1024))
                .hasMessageContaining("BF16");
    }

    @Test
    void fluentPlanReadsLikeTheQuestion() {
        MemoryPlan p = Plan.of("llama-3.1-8b").on("study-8xV100").stack("all").at(131072);
        assertThat(p.context()).isEqualTo(131072);
        assertThat(p.node().name()).isEqualTo("study-8xV100");
        assertThat(p.describe()).contains("GPU peak").contains("Host peak").contains("activations");
        MemoryPlan two = Plan.of("llama-3.1-8b").on("study-8xV100").stack("all").with(t -> t.withMicroBatch(2)).at(65536);
        assertThat(two.stack().microBatch()).isEqualTo(2);
    }
}
