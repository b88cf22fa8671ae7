package dev.longtune.plan;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class ThroughputModelTest {
    final ModelConfig llama = ModelCatalog.get("llama-3.1-8b");

    @Test
    void flopsPerTokenByHand() {
        TechniqueSet noCkpt = Stacks.baseline(NodeCatalog.get("study-4xA6000"), EngineProfile.HF_DEEPSPEED);
        long s = 32_768;
        // layer matmul weights: every parameter but the embedding, the LM head and the 65 norms
        double layers = 8_030_261_248.0 - 2 * 525_336_576.0 - 65 * 4096;
        double head = 6.0 * 128_256 * 4096, attention = 6.0 * 32 * 4096 * s;
        assertThat(ThroughputModel.flopsPerToken(llama, noCkpt, s)).isCloseTo(6 * layers + head + attention, within(1.0));
        // checkpointing recomputes the layers' forward, not the loss
        assertThat(ThroughputModel.flopsPerToken(llama, noCkpt.withCheckpointing(Checkpointing.OFFLOAD), s))
                .isCloseTo((6 * layers + attention) * 4 / 3 + head, within(1.0));
    }

    @Test
    void fsdp2At128KByHandFromTheH200Rates() {
        // issue 9's case: 2×H200, ZeRO-3 + parameter and optimizer offload, offloaded checkpoints, SDPA, 128K
        MeasuredSteps.Row r = MeasuredSteps.rows().get(1);
        double T = 131_072, layers = 6 * (8_030_261_248.0 - 2 * 525_336_576.0 - 65 * 4096);
        double gemm = layers * 4 / 3 * T / 790.3e12;
        double loss = 6.0 * 128_256 * 4096 * T / 537.4e12;
        double fwd = 2 * T * T * 4096 * 32;                            // causal forward FLOPs, all layers
        double attention = fwd / 331.6e12 + 3.5 * fwd / 326.0e12;      // recomputed forward + forward and backward
        assertThat(r.predicted().computeSeconds()).isCloseTo(gemm + loss + attention, within(1e-9));
        assertThat(r.predicted().exposedSeconds()).isZero();           // 1.9 s of copies behind 72 s of compute
        assertThat(r.predicted().optimizerSeconds()).isCloseTo(5.1, within(1e-9));
        double tokensPerS = 2 * T / (gemm + loss + attention + 5.1);
        assertThat(r.predicted().tokensPerSecond()).isCloseTo(tokensPerS, within(1e-6));
        // the old model's 2,758 became 3,402 against 4,404 measured: the step's attention ran faster than the
        // SDPA kernel rate measured alone (docs/benchmarks.md); when that is resolved this bound must move
        assertThat(r.ratio()).isBetween(0.76, 0.78);
    }

    @Test
    void h200StepsWithinTheUnmodelledOps() {
        // The model leaves out the memory-bound ops (RMSNorm, RoPE, SwiGLU, residual adds, casts: 11 ms of our
        // 2-layer 32K step's ~870 ms by the kernel rows, 1.3%), launch gaps and host synchronisation; it may not
        // be slower than the measurement, and not faster by more than 15% (ours at 8K, 14%, has the most launches
        // per FLOP). FSDP2 at 32K is the optimizer and the same kernels: within 5%.
        for (MeasuredSteps.Row r : MeasuredSteps.rows()) {
            if (r.setup().startsWith("FSDP2") && r.context() == 32_768) {
                assertThat(r.ratio()).as(r.setup()).isBetween(0.95, 1.05);
            } else if (!r.setup().startsWith("FSDP2")) {
                assertThat(r.ratio()).as(r.setup() + " at " + r.context()).isBetween(1.0, 1.15);
            }
        }
    }

    @Test
    void moreGpusMoreTokensAndLongerContextsFewer() {
        var model = new ThroughputModel(EngineProfile.HF_DEEPSPEED);
        var node = NodeCatalog.get("study-8xA100");
        TechniqueSet t = Stacks.study(node, EngineProfile.HF_DEEPSPEED);
        Throughput one = model.estimate(llama, node.withGpus(1), t, 131_072);
        Throughput eight = model.estimate(llama, node, t, 131_072);
        // per-GPU compute is the same; the optimizer splits over 8 processes, bounded by the node's DRAM
        assertThat(eight.computeSeconds()).isCloseTo(one.computeSeconds(), within(1e-9));
        assertThat(one.optimizerSeconds() / eight.optimizerSeconds()).isCloseTo(8.0, within(1e-9));
        double stepOne = one.computeSeconds() + one.exposedSeconds() + one.optimizerSeconds();
        double stepEight = eight.computeSeconds() + eight.exposedSeconds() + eight.optimizerSeconds();
        assertThat(eight.tokensPerSecond() / one.tokensPerSecond()).isCloseTo(8 * stepOne / stepEight, within(1e-9));
        assertThat(model.estimate(llama, node, t, 32_768).tokensPerSecond()).isGreaterThan(eight.tokensPerSecond());
    }
}
