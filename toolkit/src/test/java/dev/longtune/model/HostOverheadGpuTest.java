package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.Precision;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.GpuTests;
import dev.longtune.train.Optimizer;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Host overhead per layer on the GPU: the work a layer queues (our kernels and cuBLAS GEMMs) and the times the host
 * waits for the GPU inside it. A layer's forward and backward must not wait at all (batch metadata resident, copies
 * ordered by events on the GPU's side), so the host runs ahead and kernels go back to back. Counted between the
 * model's layer-done callbacks of the second step; each pass's first interval is left out (it also holds the
 * embedding, or the loss).
 */
class HostOverheadGpuTest {
    @BeforeEach
    void needsAGpu() { GpuTests.assumeGpu(); }

    /**
     * One layer's work: pass, layer, kernels and GEMMs queued, host waits of the thread that queues them, and host
     * waits of every thread (the host optimizer's thread waits for each layer's gradients to arrive: by design).
     */
    record LayerCount(String pass, int layer, long launches, long waits, long waitsAllThreads) {}

    @ParameterizedTest(name = "parameters on the {0}, checkpointing {1}")
    @CsvSource({"device, device", "host, offload"})
    void aLayerQueuesItsWorkWithoutWaitingForTheGpu(String placement, String checkpointing) {
        List<LayerCount> counts = new ArrayList<>();
        try (CudaDevice d = new CudaDevice();
             LlamaModel m = new LlamaModel(ParameterOffloadGpuTest.model(), d, Precision.BF16, Checkpointing.parse(checkpointing),
                     ParameterPlacement.parse(placement))) {
            m.initialize(4);
            try (Trainer t = new Trainer(m, TrainingConfig.defaults(4), Precision.BF16, Optimizer.Placement.HOST)) {
                Random r = new Random(8);
                t.step(List.of(Batch.ofDocument(ParameterOffloadGpuTest.pattern(r, 512))));
                long[] last = {d.launches(), d.hostWaitsOnThisThread(), d.hostWaits()};
                String[] pass = {""};
                List<String> where = new ArrayList<>();  // the call stack of each wait inside a counted layer
                d.traceHostWaits(true);
                m.setLayerListener((p, layer, layers) -> {
                    long launches = d.launches(), waits = d.hostWaitsOnThisThread(), all = d.hostWaits();
                    List<StackTraceElement[]> stacks = d.tracedHostWaits();
                    d.traceHostWaits(true);
                    if (p.equals(pass[0])) { // not the pass's first interval
                        counts.add(new LayerCount(p, layer, launches - last[0], waits - last[1], all - last[2]));
                        for (StackTraceElement[] st : stacks) {
                            where.add(p + " layer " + layer + ": " + java.util.Arrays.stream(st).limit(12)
                                    .map(StackTraceElement::toString).collect(java.util.stream.Collectors.joining(" <- ")));
                        }
                    }
                    pass[0] = p;
                    last[0] = launches;
                    last[1] = waits;
                    last[2] = all;
                });
                t.step(List.of(Batch.ofDocument(ParameterOffloadGpuTest.pattern(r, 512))));
                d.traceHostWaits(false);
                where.forEach(w -> System.out.println("host wait inside a layer: " + w));
            }
        }
        System.out.printf("host overhead, parameters on the %s, checkpointing %s: %s%n", placement, checkpointing, counts);
        assertThat(counts).hasSize(2 * (ParameterOffloadGpuTest.model().numLayers() - 1));
        for (LayerCount c : counts) {
            assertThat(c.waits()).as(c.toString()).isZero();
            assertThat(c.launches()).as(c.toString()).isPositive();
        }
    }
}
