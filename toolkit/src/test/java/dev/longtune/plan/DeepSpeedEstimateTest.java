package dev.longtune.plan;

import dev.longtune.config.ModelCatalog;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** DeepSpeed's estimate_zero3_model_states_mem_needs_all_live for Llama 3.1 8B, checked by hand. */
class DeepSpeedEstimateTest {
    static final long N = 8_030_261_248L, LARGEST = 525_336_576L;

    @Test
    void eightGpusByHand() {
        var rows = new DeepSpeedEstimate(ModelCatalog.get("llama-3.1-8b"), 8, 1).rows();
        assertThat(rows).hasSize(6);
        // offload params and optimizer, zero_init: 18 B/param × 1.5 on the CPU; the largest layer × 4 B on the GPU
        assertThat(rows.get(0).cpuBytes()).isEqualTo(N * 18 * 3 / 2);
        assertThat(rows.get(0).gpuBytes()).isEqualTo(4 * LARGEST);
        // without zero_init: max(4 × 8 GPUs, 18) = 32 B/param × 1.5
        assertThat(rows.get(1).cpuBytes()).isEqualTo(N * 32 * 3 / 2);
        // optimizer offload only: 16 B/param × 1.5 on the CPU; + 2 B/param / 8 GPUs on the GPU
        assertThat(rows.get(2).cpuBytes()).isEqualTo(N * 16 * 3 / 2);
        assertThat(rows.get(2).gpuBytes()).isEqualTo(4 * LARGEST + 2 * N / 8);
        // no offload: 18 B/param / 8 GPUs; the CPU holds the largest layer × 4 B × 8 GPUs × 1.5
        assertThat(rows.get(4).gpuBytes()).isEqualTo(4 * LARGEST + 18 * N / 8);
        assertThat(rows.get(4).cpuBytes()).isEqualTo(LARGEST * 4 * 8 * 3 / 2);
        assertThat(rows.get(5).cpuBytes()).isEqualTo(N * 4 * 8 * 3 / 2);
    }

    @Test
    void tablePrintsLikeDeepSpeed() {
        String eight = new DeepSpeedEstimate(ModelCatalog.get("llama-3.1-8b"), 8, 1).table();
        assertThat(eight).contains("HW: Setup with 1 node, 8 GPUs per node.")
                .contains("SW: Model with 8030M total params, 525M largest layer params.")
                .contains("  201.93GB |   1.96GB | offload_param=cpu , offload_optimizer=cpu , zero_init=1")
                .contains("  358.98GB |   1.96GB | offload_param=cpu , offload_optimizer=cpu , zero_init=0")
                .contains("  179.49GB |   3.83GB | offload_param=none, offload_optimizer=cpu , zero_init=1")
                .contains("   23.48GB |  18.78GB | offload_param=none, offload_optimizer=none, zero_init=1");
        String four = new DeepSpeedEstimate(ModelCatalog.get("llama-3.1-8b"), 4, 1).table();
        // with 4 GPUs max(4 × 4, 18) = 18, so zero_init makes no difference on the CPU
        assertThat(four).contains("  201.93GB |   1.96GB | offload_param=cpu , offload_optimizer=cpu , zero_init=0")
                .contains("  179.49GB |   5.70GB | offload_param=none, offload_optimizer=cpu , zero_init=1")
                .contains("   11.74GB |  35.61GB | offload_param=none, offload_optimizer=none, zero_init=1");
    }

    @Test
    void refusesNonPositiveCounts() {
        assertThatThrownBy(() -> new DeepSpeedEstimate(ModelCatalog.get("llama-3.1-8b"), 0, 1))
                .hasMessageContaining("must be positive");
    }
}
