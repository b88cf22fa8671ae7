package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.GpuTests;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.train.Optimizer;
import dev.longtune.train.StepResult;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Parameter offload on the GPU: weights and gradients in pinned host memory, a unit at a time in device slots,
 * copies on the H2D/D2H streams. The forward pass is deterministic, so the first loss is bit-identical to a
 * resident run; the attention backward sums dQ with atomics, so later steps agree to rounding only.
 */
class ParameterOffloadGpuTest {
    @BeforeEach
    void needsAGpu() { GpuTests.assumeGpu(); }

    static ModelConfig model() {
        // head dim 64 (the GPU attention kernels take 64 and 128), GQA 4/2, 4 layers, untied head
        return TinyLlama.config(256, 688, 4, 4, 2, 1003, false);
    }

    static List<StepResult> train(ParameterPlacement placement, Precision p, Checkpointing ck, CudaDevice d) {
        return train(placement, p, ck, d, 0);
    }

    static List<StepResult> train(ParameterPlacement placement, Precision p, Checkpointing ck, CudaDevice d, int residentLayers) {
        return train(placement, p, ck, d, residentLayers, false);
    }

    static List<StepResult> train(ParameterPlacement placement, Precision p, Checkpointing ck, CudaDevice d, int residentLayers,
                                  boolean residentEmbedding) {
        List<StepResult> out = new ArrayList<>();
        try (LlamaModel m = residentLayers > 0 || residentEmbedding ? new LlamaModel(model(), d, p, ck, residentLayers, residentEmbedding)
                : new LlamaModel(model(), d, p, ck, placement)) {
            m.initialize(4);
            TrainingConfig tc = TrainingConfig.defaults(6).withLearningRate(2e-3, 2e-4).withGradientAccumulation(2);
            try (Trainer t = new Trainer(m, tc, p, Optimizer.Placement.HOST)) {
                Random r = new Random(8);
                for (int step = 0; step < 4; step++) {
                    List<Batch> mbs = List.of(Batch.ofDocuments(List.of(pattern(r, 300), pattern(r, 211))),
                            Batch.ofDocument(pattern(r, 389)));
                    out.add(t.step(mbs));
                }
            }
        }
        return out;
    }

    /** A learnable run: token i+1 follows token i (mod the vocabulary), from a random start. */
    static int[] pattern(Random r, int n) {
        int start = r.nextInt(1003);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (start + i) % 1003;
        }
        return ids;
    }

    @ParameterizedTest(name = "{0}, checkpointing {1}")
    @CsvSource({"bf16, offload", "fp16, device"})
    void offloadedTrainingMatchesResidentOnTheGpu(String precision, String checkpointing) {
        Precision p = Precision.parse(precision);
        Checkpointing ck = Checkpointing.parse(checkpointing);
        List<StepResult> resident, offloaded;
        long slotWeights, allWeights;
        try (CudaDevice d = new CudaDevice()) {
            resident = train(ParameterPlacement.DEVICE, p, ck, d);
            allWeights = d.memory().peak(MemoryCategory.WEIGHTS);
        }
        try (CudaDevice d = new CudaDevice()) {
            offloaded = train(ParameterPlacement.HOST, p, ck, d);
            slotWeights = d.memory().peak(MemoryCategory.WEIGHTS);
            assertThat(d.hostMemory().peak(MemoryCategory.WEIGHTS)).isEqualTo(allWeights);
            assertThat(d.hostMemory().peak(MemoryCategory.GRADS)).isEqualTo(allWeights);
        }
        // two of four layers and the head (whose slot the embedding shares) on the device
        ParameterUnits units = new ParameterUnits(model());
        long expected = 0;
        for (int unit : new int[] {1, 2, units.head()}) {
            for (String n : units.names(unit)) {
                expected += (long) model().parameterTensors().stream().filter(t -> t.name().equals(n)).findFirst()
                        .orElseThrow().elements() * p.bytes;
            }
        }
        assertThat(slotWeights).isEqualTo(expected).isLessThan(allWeights);
        assertThat(offloaded.get(0).loss()).isEqualTo(resident.get(0).loss());
        for (int i = 0; i < resident.size(); i++) {
            assertThat(offloaded.get(i).loss()).as("step %d", i + 1).isCloseTo(resident.get(i).loss(), within(2e-3 * resident.get(i).loss()));
            assertThat(offloaded.get(i).applied()).isEqualTo(resident.get(i).applied());
            // the device's busy time (events around each unit's kernels) lies within the step's wall time
            assertThat(offloaded.get(i).busySeconds()).isPositive().isLessThan(offloaded.get(i).seconds());
        }
        assertThat(offloaded.get(3).loss()).isLessThan(offloaded.get(0).loss());
    }

    /**
     * Two of four layers resident on the GPU, their AdamW state there and updated by the GPU's kernel, the others
     * offloaded and updated by the host's: the same losses as every layer offloaded, to round-off (the GPU sums the
     * gradient norm in another order), and the resident layers' state in device memory, not in host memory.
     */
    @ParameterizedTest(name = "{0}, embedding resident {1}")
    @CsvSource({"bf16, true", "fp16, false"})
    void residentLayersMatchOffloadedOnTheGpu(String precision, boolean embedding) {
        Precision p = Precision.parse(precision);
        List<StepResult> offloaded, mixed;
        long hostWeights, hostOptimizer;
        try (CudaDevice d = new CudaDevice()) {
            offloaded = train(ParameterPlacement.HOST, p, Checkpointing.OFFLOAD, d);
            hostWeights = d.hostMemory().peak(MemoryCategory.WEIGHTS);
            hostOptimizer = d.hostMemory().peak(MemoryCategory.OPTIMIZER);
        }
        ParameterUnits units = new ParameterUnits(model());
        long resident = embedding ? 1003L * 256 : 0;
        for (int unit : new int[] {1, 2}) {
            for (String n : units.names(unit)) {
                resident += model().parameterTensors().stream().filter(t -> t.name().equals(n)).findFirst().orElseThrow().elements();
            }
        }
        try (CudaDevice d = new CudaDevice()) {
            mixed = train(ParameterPlacement.HOST, p, Checkpointing.OFFLOAD, d, 2, embedding);
            assertThat(d.hostMemory().peak(MemoryCategory.WEIGHTS)).isEqualTo(hostWeights - resident * p.bytes);
            assertThat(d.hostMemory().peak(MemoryCategory.OPTIMIZER)).isEqualTo(hostOptimizer - 12 * resident);
            assertThat(d.memory().peak(MemoryCategory.OPTIMIZER)).isEqualTo(12 * resident);
        }
        assertThat(mixed.get(0).loss()).isEqualTo(offloaded.get(0).loss());
        for (int i = 0; i < offloaded.size(); i++) {
            assertThat(mixed.get(i).loss()).as("step %d", i + 1).isCloseTo(offloaded.get(i).loss(), within(1e-3 * offloaded.get(i).loss()));
            assertThat(mixed.get(i).gradNorm()).as("step %d", i + 1).isCloseTo(offloaded.get(i).gradNorm(), within(1e-3 * offloaded.get(i).gradNorm()));
            assertThat(mixed.get(i).applied()).isEqualTo(offloaded.get(i).applied());
        }
        assertThat(mixed.get(3).loss()).isLessThan(mixed.get(0).loss());
    }
}
