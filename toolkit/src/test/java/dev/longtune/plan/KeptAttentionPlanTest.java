package dev.longtune.plan;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Attention kept for some layers (train --keep-attention N): the host holds N layers' outputs and lse, and the
 * step recomputes attention for the other layers only.
 */
class KeptAttentionPlanTest {
    final ModelConfig m = ModelCatalog.get("llama-3.1-8b");
    final NodeProfile node = NodeCatalog.get("2xH200");
    final long context = 131_072;
    final TechniqueSet offload = Stacks.engineRun(node, Precision.BF16, true, true, dev.longtune.config.Checkpointing.OFFLOAD);

    long hostCheckpoints(TechniqueSet s) {
        return new MemoryPlanner(EngineProfile.LONGTUNE).plan(m, node, s, context).hostAtPeak().byCategory()
                .get(MemoryCategory.CHECKPOINTS);
    }

    double tokensPerSecond(TechniqueSet s) { return new ThroughputModel(EngineProfile.LONGTUNE).estimate(m, node, s, context).tokensPerSecond(); }

    @Test
    void theHostHoldsTheKeptLayersOnly() {
        long none = hostCheckpoints(offload), all = hostCheckpoints(offload.withKeepAttention(true));
        long perLayer = (all - none) / m.numLayers();
        assertThat(all - none).isEqualTo(perLayer * m.numLayers()).isPositive();
        assertThat(hostCheckpoints(offload.withKeptAttentionLayers(20)) - none).isEqualTo(20 * perLayer);
        assertThat(hostCheckpoints(offload.withKeptAttentionLayers(0))).isEqualTo(none);
        assertThat(hostCheckpoints(offload.withKeptAttentionLayers(m.numLayers() + 5))).isEqualTo(all);
        // per GPU of the run and layer: T·(q·2 + 4·heads), its bf16 output and fp32 lse
        assertThat(perLayer % (context * (m.queryDim() * 2L + 4L * m.numHeads()))).isZero();
    }

    @Test
    void eachKeptLayerSavesItsAttentionRecompute() {
        double none = tokensPerSecond(offload), half = tokensPerSecond(offload.withKeptAttentionLayers(16)),
                all = tokensPerSecond(offload.withKeepAttention(true));
        assertThat(half).isGreaterThan(none).isLessThan(all);
        assertThat(offload.withKeptAttentionLayers(16).describe()).contains("keep-attn=16");
        assertThat(offload.withKeepAttention(true).describe()).contains("keep-attn").doesNotContain("keep-attn=");
        assertThat(offload.withKeptAttentionLayers(-1).problems(node, EngineProfile.LONGTUNE)).anyMatch(p -> p.contains("0 or more"));
    }
}
