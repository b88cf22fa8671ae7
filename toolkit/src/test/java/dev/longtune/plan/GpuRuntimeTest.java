package dev.longtune.plan;

import dev.longtune.config.GpuCatalog;
import dev.longtune.config.NodeCatalog;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class GpuRuntimeTest {
    @Test
    void cudaContextByGpuGeneration() {
        // stack for every resident thread (SMs × threads × 1 KiB) + 9 MiB FIFO and heap + 245 MiB driver/modules
        assertThat(GpuRuntime.cudaContextBytes(GpuCatalog.get("V100"))).isEqualTo((160L + 9 + 245) << 20);
        assertThat(GpuRuntime.cudaContextBytes(GpuCatalog.get("A6000"))).isEqualTo((126L + 9 + 245) << 20);
        assertThat(GpuRuntime.cudaContextBytes(GpuCatalog.get("A100"))).isEqualTo((216L + 9 + 245) << 20);
        assertThat(GpuRuntime.cudaContextBytes(NodeCatalog.cpu().gpu())).isZero();
    }

    @Test
    void theH200ContextIsTheMeasuredOne() throws Exception {
        // bench/results/cuda-context-h200.json: a bare context in nvidia-smi, with the H200's SMs and threads
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(
                java.nio.file.Files.readString(java.nio.file.Path.of("..", "bench", "results", "cuda-context-h200.json")));
        var h200 = GpuCatalog.get("H200");
        assertThat(h200.sms()).isEqualTo(json.get("sms").asInt());
        assertThat(h200.maxThreadsPerSm()).isEqualTo(json.get("max_threads_per_sm").asInt());
        assertThat(GpuRuntime.cudaContextBytes(h200)).isEqualTo(json.get("nvidia_smi_used_mib").get("context").asLong() << 20);
    }

    @Test
    void aPlanFitsOnlyWithRoomForTheContextAndTheRounding() {
        var node = NodeCatalog.get("study-8xV100");
        var plan = Plan.of("llama-3.1-8b").on(node).stack("all");
        long max = new ContextSearch(plan.engineProfile()).maxContext(plan.model(), node, plan.techniques());
        MemoryPlan last = Plan.of("llama-3.1-8b").on(node).stack("all").at(max);
        MemoryPlan over = Plan.of("llama-3.1-8b").on(node).stack("all").at(max + 1);
        assertThat(last.gpuNvidiaSmiBytes()).isLessThanOrEqualTo(node.gpu().memoryBytes());
        assertThat(over.fits()).isFalse();
        // allocated alone would still fit there: the context and the rounding are what stops it
        assertThat(over.gpuPeakBytes()).isLessThan(node.gpu().memoryBytes());
    }
}
