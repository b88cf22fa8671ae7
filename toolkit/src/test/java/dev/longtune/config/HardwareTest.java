package dev.longtune.config;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class HardwareTest {
    private static final long GiB = 1L << 30;

    @Test
    void studyNodesAsPublished() {
        NodeProfile v100 = NodeCatalog.get("study-8xV100");
        assertThat(v100.gpus()).isEqualTo(8);
        assertThat(v100.gpu().memoryBytes()).isEqualTo(16 * GiB);
        assertThat(v100.gpu().supportsBf16()).isFalse();
        assertThat(v100.hostRamBytes()).isEqualTo(481 * GiB);
        assertThat(v100.cores()).isEqualTo(92);
        NodeProfile a6000 = NodeCatalog.get("study-4xA6000");
        assertThat(a6000.gpus()).isEqualTo(4);
        assertThat(a6000.hostRamBytes()).isEqualTo(Math.round(429.5 * GiB));
        assertThat(a6000.gpu().supportsBf16()).isTrue();
        assertThat(NodeCatalog.get("study-8xA100").hostRamBytes()).isEqualTo(1900 * GiB);
    }

    @Test
    void countTimesGpuNodes() {
        NodeProfile n = NodeCatalog.get("4xa6000");
        assertThat(n.gpus()).isEqualTo(4);
        assertThat(n.gpu().name()).isEqualTo("A6000");
        assertThat(NodeCatalog.get("2xH100-80GB").gpu().computeCapability()).isEqualTo(90);
        assertThat(NodeCatalog.get("8xV100").gpu().name()).isEqualTo("V100-SXM2-16GB");
    }

    @Test
    void unknownNamesListTheValidOnes() {
        assertThatThrownBy(() -> NodeCatalog.get("study-2xP100"))
                .hasMessageContaining("study-2xP100").hasMessageContaining("study-8xV100");
        assertThatThrownBy(() -> NodeCatalog.get("4xP100"))
                .hasMessageContaining("P100").hasMessageContaining("A6000");
        assertThatThrownBy(() -> GpuCatalog.get("T4")).hasMessageContaining("H200");
        assertThatThrownBy(() -> NodeCatalog.get("study-8xA100").withGpus(9)).hasMessageContaining("8 GPUs");
    }

    @Test
    void onlyAmpereAndNewerRunTheOfficialFlashAttention() {
        assertThat(GpuCatalog.get("v100").supportsOfficialFlashAttention2()).isFalse();
        assertThat(GpuCatalog.get("a6000").supportsOfficialFlashAttention2()).isTrue();
        assertThat(GpuCatalog.get("h200").supportsOfficialFlashAttention2()).isTrue();
    }
}
