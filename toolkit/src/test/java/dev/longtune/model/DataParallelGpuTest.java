package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.cuda.Cuda;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.CudaOptions;
import dev.longtune.cuda.GpuTests;
import dev.longtune.train.DataParallel;
import dev.longtune.train.StepResult;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * ZeRO-3 data parallelism over NCCL on the GPUs: the weights gathered and the gradients reduce-scattered by NCCL
 * train as the unsharded engine with the same micro-batches does (to the GPU's rounding: NCCL's sums and the
 * attention backward's atomics). One rank runs on any GPU; two need the 2-GPU machine.
 */
class DataParallelGpuTest {
    /** hidden 128, 2 query / 1 KV heads of 64, MLP 344, vocab 301, 2 layers. */
    static final ModelConfig CONFIG = TinyLlama.config(128, 344, 2, 2, 1, 301, false);

    /** The same sequences every step (random tokens are learnable only by heart: the loss must fall). */
    static List<Batch> batches(int step, int count) {
        Random r = new Random(70);
        List<Batch> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(Batch.ofDocuments(List.of(r.ints(160, 0, 301).toArray(), r.ints(96, 0, 301).toArray())));
        }
        return out;
    }

    /** Where {@link #unsharded} leaves its model's held-out loss among the weights. */
    static final String EVAL = "(held-out loss)";

    static TrainingConfig training(int microBatches) {
        return TrainingConfig.defaults(6).withLearningRate(3e-3, 3e-4).withGradientAccumulation(microBatches);
    }

    /** The unsharded engine on GPU 0 with {@code sequences} micro-batches a step: losses and final weights. */
    static List<StepResult> unsharded(int sequences, Map<String, float[]> weights) {
        try (CudaDevice d = new CudaDevice(); LlamaModel m = new LlamaModel(CONFIG, d, Precision.BF16, Checkpointing.DEVICE)) {
            m.initialize(3); // before the trainer, which takes its FP32 master copy from these weights
            Trainer t = new Trainer(m, training(sequences), Precision.BF16);
            List<StepResult> out = new ArrayList<>();
            for (int s = 0; s < 3; s++) {
                out.add(t.step(batches(s, sequences)));
            }
            m.weights().byName().forEach((n, w) -> weights.put(n, d.read(w)));
            double eval = 0;
            for (Batch b : batches(7, 3)) { // held-out sequences, forward only
                eval += m.loss(b);
            }
            weights.put(EVAL, new float[] {(float) (eval / 3)});
            t.close();
            return out;
        }
    }

    static void assertTrainsAsUnsharded(int gpus) {
        Map<String, float[]> expected = new java.util.HashMap<>();
        List<StepResult> reference = unsharded(gpus, expected);
        try (DataParallel dp = DataParallel.onGpus(CONFIG, Precision.BF16, Checkpointing.DEVICE, training(1), gpus,
                CudaOptions.defaults(), 3)) {
            for (int s = 0; s < 3; s++) {
                StepResult r = dp.step(batches(s, gpus));
                assertThat(r.loss()).as("step %d loss", s + 1).isCloseTo(reference.get(s).loss(), within(2e-3 * reference.get(s).loss()));
                assertThat(r.gradNorm()).as("step %d norm", s + 1).isCloseTo(reference.get(s).gradNorm(),
                        within(3e-2 * reference.get(s).gradNorm()));
                assertThat(r.tokens()).isEqualTo(reference.get(s).tokens());
                // the collectives timed with events on the communication stream, and the share compute hid
                assertThat(r.communicationSeconds()).as("step %d communication stream", s + 1).isGreaterThan(0);
                assertThat(r.collectiveOverlap()).isBetween(0.0, 1.0);
            }
            assertThat(reference.get(2).loss()).isLessThan(reference.get(0).loss());
            // the held-out loss, forward only with the weights gathered unit by unit (3 sequences over the ranks)
            float evalExpected = expected.remove(EVAL)[0];
            assertThat(dp.meanLoss(batches(7, 3))).isCloseTo(evalExpected, within(2e-3 * evalExpected));
            Map<String, float[]> got = dp.weights();
            expected.forEach((name, w) -> {
                double diff = 0, norm = 0;
                for (int i = 0; i < w.length; i++) {
                    diff += Math.pow(got.get(name)[i] - w[i], 2);
                    norm += (double) w[i] * w[i];
                }
                assertThat(Math.sqrt(diff / Math.max(norm, 1e-30))).as(name).isLessThan(2e-2);
            });
            // greedy generation on the sharded model (every rank gathering in step) picks what the same weights,
            // whole on one GPU, pick (the chat stop tokens lie outside this vocabulary)
            int[] prompt = new Random(71).ints(40, 0, 301).toArray();
            try (CudaDevice d = new CudaDevice(); LlamaModel whole = new LlamaModel(CONFIG, d, Precision.BF16, Checkpointing.DEVICE)) {
                got.forEach(whole::load);
                whole.weightsChanged();
                assertThat(dp.generate(prompt, 6)).containsExactly(new Generator(whole, java.util.Set.of()).generate(prompt, 6).tokens());
            }
        }
    }

    @Test
    void oneRankOverNcclTrainsAsTheUnshardedEngine() {
        GpuTests.assumeGpu();
        assertTrainsAsUnsharded(1);
    }

    @Test
    void twoGpusWithOneMicroBatchEachTrainAsOneGpuWithTwo() {
        GpuTests.assumeGpu();
        assumeTrue(Cuda.deviceCount() >= 2, "needs 2 GPUs (this machine has " + Cuda.deviceCount()
                + "): run bash bench/gpu-test.sh on the 2-GPU machine");
        assertTrainsAsUnsharded(2);
    }

    /**
     * Shards offloaded to the host, with each rank's shards of the first layer and of the embedding resident on its
     * GPU (updated by the GPU's AdamW) and checkpoints brought back a layer ahead, train as every shard offloaded
     * and checkpoints brought back in turn, to the GPU's rounding; on 2 GPUs where there are 2, else on 1.
     */
    @Test
    void residentShardsAndCheckpointsAheadTrainAsOffloadedOnes() {
        GpuTests.assumeGpu();
        int gpus = Math.min(2, Cuda.deviceCount());
        DataParallel.Job offloaded = new DataParallel.Job(CONFIG, Precision.BF16, Checkpointing.OFFLOAD, ParameterPlacement.HOST,
                training(1), 3);
        List<StepResult> expected = new ArrayList<>();
        try (DataParallel dp = DataParallel.onGpus(offloaded, gpus, CudaOptions.defaults())) {
            for (int s = 0; s < 3; s++) {
                expected.add(dp.step(batches(s, gpus)));
            }
        }
        try (DataParallel dp = DataParallel.onGpus(offloaded.withResident(1, true), gpus, CudaOptions.defaults())) {
            for (int r = 0; r < gpus; r++) {
                dp.rank(r).model().setPrefetchCheckpoints(true);
            }
            for (int s = 0; s < 3; s++) {
                List<StepResult> ranks = dp.stepAll(batches(s, gpus));
                double loss = expected.get(s).loss();
                assertThat(ranks.get(0).loss()).as("step %d loss", s + 1).isCloseTo(loss, within(2e-3 * loss));
                // each rank's GPU holds the AdamW state of its resident shards; all offloaded, none
                for (int r = 0; r < gpus; r++) {
                    assertThat(ranks.get(r).devicePeak().get(dev.longtune.tensor.MemoryCategory.OPTIMIZER)).as("rank %d", r).isPositive();
                    assertThat(expected.get(s).devicePeak().getOrDefault(dev.longtune.tensor.MemoryCategory.OPTIMIZER, 0L)).isZero();
                }
            }
            assertThat(expected.get(2).loss()).isLessThan(expected.get(0).loss());
        }
    }
}
