package dev.longtune.config;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TechniqueSetTest {
    private final NodeProfile v100 = NodeCatalog.get("study-8xV100");
    private final NodeProfile a6000 = NodeCatalog.get("study-4xA6000");
    private final EngineProfile hf = EngineProfile.HF_DEEPSPEED;

    @Test
    void bf16OnV100IsRefusedWithTheFix() {
        TechniqueSet t = Stacks.named("all", v100, hf).withPrecision(Precision.BF16);
        assertThatThrownBy(() -> t.requireValid(v100, hf))
                .isInstanceOf(InvalidTechniqueException.class)
                .hasMessageContaining("BF16").hasMessageContaining("V100").hasMessageContaining("fp16");
        t.withPrecision(Precision.FP16).requireValid(v100, hf);
    }

    @Test
    void officialFlashAttentionOnV100IsRefusedOnlyUnderHfDeepSpeed() {
        TechniqueSet t = Stacks.named("all", v100, hf).withAttention(Attention.FLASH_ATTENTION_2);
        assertThat(t.problems(v100, hf)).singleElement().asString()
                .contains("FlashAttention-2").contains("sm_70").contains("--attention sdpa");
        assertThat(t.problems(v100, EngineProfile.LONGTUNE)).isEmpty();
        assertThat(t.problems(a6000, hf)).isEmpty();
    }

    @Test
    void parameterOffloadNeedsZero3() {
        TechniqueSet t = Stacks.baseline(a6000, hf).withZero(2, true, true);
        assertThat(t.problems(a6000, hf)).singleElement().asString().contains("ZeRO stage 3").contains("--zero 3");
        assertThat(Stacks.baseline(a6000, hf).withZero(0, true, false).problems(a6000, hf))
                .singleElement().asString().contains("optimizer offload needs ZeRO stage 1");
    }

    @Test
    void everyProblemIsListedAtOnce() {
        TechniqueSet t = Stacks.baseline(v100, hf).withPrecision(Precision.BF16).withMicroBatch(0)
                .withGradientAccumulation(-1).withSequenceTile(-5).withGpus(9);
        InvalidTechniqueException e = org.junit.jupiter.api.Assertions.assertThrows(InvalidTechniqueException.class,
                () -> t.requireValid(v100, hf));
        assertThat(e.reasons()).hasSize(5);
        assertThat(e.getMessage()).contains("micro-batch must be positive, was 0")
                .contains("gradient accumulation must be positive, was -1").contains("between 1 and 8");
    }

    @Test
    void studyStackFollowsTheNode() {
        TechniqueSet onV100 = Stacks.named("study", v100, hf);
        assertThat(onV100.precision()).isEqualTo(Precision.FP16);
        assertThat(onV100.attention()).isEqualTo(Attention.SDPA);
        assertThat(onV100.checkpointing()).isEqualTo(Checkpointing.OFFLOAD);
        assertThat(onV100.liger()).containsExactlyInAnyOrder(LigerOp.values());
        assertThat(onV100.zeroStage()).isEqualTo(3);
        assertThat(onV100.offloadOptimizer()).isTrue();
        assertThat(onV100.offloadParameters()).isTrue();
        TechniqueSet onA6000 = Stacks.named("study", a6000, hf);
        assertThat(onA6000.precision()).isEqualTo(Precision.BF16);
        assertThat(onA6000.attention()).isEqualTo(Attention.FLASH_ATTENTION_2);
        assertThat(Stacks.named("fa2", v100, EngineProfile.LONGTUNE).attention()).isEqualTo(Attention.FLASH_ATTENTION_2);
        assertThat(Stacks.named("fa2", v100, hf).attention()).isEqualTo(Attention.SDPA);
    }

    @Test
    void namedStacksAddOneTechniqueToTheBaseline() {
        TechniqueSet base = Stacks.baseline(a6000, hf);
        assertThat(Stacks.named("ckpt", a6000, hf)).isEqualTo(base.withCheckpointing(Checkpointing.DEVICE));
        assertThat(Stacks.named("zero-offload", a6000, hf)).isEqualTo(base.withZero(3, true, true));
        assertThat(Stacks.named("all-tiled", a6000, hf).sequenceTile()).isEqualTo(Stacks.DEFAULT_TILE);
        assertThatThrownBy(() -> Stacks.named("turbo", a6000, hf))
                .hasMessageContaining("turbo").hasMessageContaining("all-tiled");
    }

    @Test
    void enumIdsParseAndBadOnesListTheChoices() {
        assertThat(Precision.parse("BF16")).isEqualTo(Precision.BF16);
        assertThat(Attention.parse("fa2")).isEqualTo(Attention.FLASH_ATTENTION_2);
        assertThatThrownBy(() -> Checkpointing.parse("cpu")).hasMessageContaining("[none, device, offload]");
    }
}
