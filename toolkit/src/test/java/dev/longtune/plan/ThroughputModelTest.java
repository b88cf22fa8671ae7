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
        // matmul weights: every parameter but the input embedding (a lookup): 8,030,261,248 − 525,336,576
        double weights = 8_030_261_248.0 - 525_336_576.0;
        double expected = 6 * weights + 6.0 * 32 * 4096 * s;
        assertThat(ThroughputModel.flopsPerToken(llama, noCkpt, s)).isCloseTo(expected, within(1.0));
        assertThat(ThroughputModel.flopsPerToken(llama, noCkpt.withCheckpointing(Checkpointing.OFFLOAD), s))
                .isCloseTo(expected * 4 / 3, within(1.0));
    }

    @Test
    void moreGpusMoreTokensAndLongerContextsFewer() {
        var model = new ThroughputModel(EngineProfile.HF_DEEPSPEED);
        var node = NodeCatalog.get("study-8xA100");
        TechniqueSet t = Stacks.study(node, EngineProfile.HF_DEEPSPEED);
        double one = model.estimate(llama, node.withGpus(1), t, 131_072).tokensPerSecond();
        double eight = model.estimate(llama, node, t, 131_072).tokensPerSecond();
        // per-GPU work is the same; one GPU also fetches every offloaded weight over its own PCIe link
        assertThat(eight).isBetween(4 * one, 8.5 * one);
        assertThat(model.estimate(llama, node, t, 32_768).tokensPerSecond()).isGreaterThan(eight);
    }
}
