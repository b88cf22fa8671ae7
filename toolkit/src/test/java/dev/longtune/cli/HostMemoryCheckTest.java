package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** A run the host cannot hold is refused before anything is allocated, with the planner's numbers. */
class HostMemoryCheckTest {
    static final long GIB = 1L << 30;
    final ModelConfig llama8b = ModelCatalog.get("llama-3.1-8b");

    @Test
    void theWhole8bOffloadedNeedsMoreThan64GibOfHostButFitsTheTwoGpuMachine() {
        // parameters, gradients, AdamW state and checkpoints on the host: ~16 + 16 + 96 + 13 GB at 49K tokens
        String refused = HostMemoryCheck.onGpu(llama8b, Precision.BF16, true, true, Checkpointing.OFFLOAD, 49_152,
                16 * GIB, 64 * GIB);
        assertThat(refused).contains("llama-3.1-8b", "49,152 tokens", "needs 1", "GiB of host memory",
                "optimizer ", "checkpoints ", "this machine has 64.00 GiB", "--host-ram");
        assertThat(HostMemoryCheck.onGpu(llama8b, Precision.BF16, true, true, Checkpointing.OFFLOAD, 49_152,
                16 * GIB, 256 * GIB)).isNull();
        // the optimizer on the GPU leaves the host nearly nothing to hold
        assertThat(HostMemoryCheck.onGpu(llama8b, Precision.BF16, false, false, Checkpointing.DEVICE, 8_192,
                Long.MAX_VALUE, 16 * GIB)).isNull();
    }

    @Test
    void theCpuEngineIsJudgedAgainstTheJavaHeap() {
        String refused = HostMemoryCheck.onCpu(llama8b, Precision.BF16, true, false, Checkpointing.DEVICE, 2_048, 24 * GIB);
        assertThat(refused).contains("on the CPU", "Java heap", "this JVM may use 24.00 GiB", "-Xmx");
        ModelConfig tiny = ModelCatalog.get("tiny-llama-3");
        assertThat(HostMemoryCheck.onCpu(tiny, Precision.BF16, true, false, Checkpointing.DEVICE, 2_048, 4 * GIB)).isNull();
    }

    @Test
    void trainRefusesTheWhole8bOnTheCpuInOneLineBeforeAllocatingIt() {
        long start = System.nanoTime();
        CommandLineTest.Result r = CommandLineTest.run("train", "--model", "llama-3.1-8b", "--device", "cpu",
                "--context", "2048", "--steps", "1");
        CommandLineErrorsTest.assertOneLine(r, "Java heap", "this JVM may use");
        assertThat((System.nanoTime() - start) / 1e9).as("refused before the weights exist").isLessThan(20);
    }
}
