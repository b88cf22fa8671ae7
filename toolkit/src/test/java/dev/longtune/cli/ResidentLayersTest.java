package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.config.TechniqueSet;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** train --resident-layers: a number or auto, the most layers whose planned GPU peak (and the allocator's share) fits. */
class ResidentLayersTest {
    static final long GIB = 1L << 30;
    final ModelConfig llama = ModelCatalog.get("llama-3.1-8b");

    /** The number-or-auto parsing is KeptAttention's (tested there); what differs: no "all", and its own option named. */
    @Test
    void parsesANumberOrAutoAndNamesItsOption() {
        assertThat(ResidentLayers.parse(null, 32)).isZero();
        assertThatThrownBy(() -> ResidentLayers.parse("all", 32)).hasMessageContaining("--resident-layers all: use auto or a number");
    }

    /**
     * At 32K with kept attention under a 48 GiB cap: 7 layers beside the resident embedding and 9 without, the
     * counts measured to fit on an H200 (7 + embedding: 46.3 GiB reserved; 10 alone: 46.3 GiB, one more than auto
     * allows); under 16 GiB at most one (the V100's cap: the activations take most of it); with the whole GPU, every layer.
     */
    @Test
    void autoKeepsWhatTheCappedGpuHolds() {
        long host = 256 * GIB;
        int all = TechniqueSet.ALL_LAYERS;
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, true, 32_768, 48 * GIB, host)).isEqualTo(7);
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 32_768, 48 * GIB, host)).isEqualTo(9);
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 32_768, 16 * GIB, host)).isLessThanOrEqualTo(1);
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 32_768, Long.MAX_VALUE, host))
                .isEqualTo(32);
        // longer context, bigger activations: fewer layers fit under the same cap
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 131_072, 48 * GIB, host))
                .isLessThan(9);
    }
}
