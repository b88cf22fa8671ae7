package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.GpuTests;
import dev.longtune.device.CpuDevice;
import dev.longtune.device.Device;
import dev.longtune.ops.reference.AdamWReference;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import dev.longtune.train.Optimizer;
import dev.longtune.train.StepResult;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The unchanged engine on each device (the CPU always, CUDA where a GPU is present, skipped with the reason where
 * none is; -Dlongtune.test.devices selects, and with cuda named a missing GPU fails): a Llama with head dim 64
 * (what the GPU attention kernels take), checkpoint modes agreeing, gradients against finite differences of the
 * device's own loss, training steps in BF16 and FP16 (loss scaling) that lower the loss, each optimizer placement
 * against a reference AdamW in double, and greedy generation against logits computed by hand.
 */
class ModelOnDevicesTest {
    static List<String> devices() { return GpuTests.devices(); }

    static Device open(String name) {
        if (name.equals("cuda")) {
            GpuTests.assumeGpu();
            return new CudaDevice();
        }
        return new CpuDevice();
    }

    /** hidden 128, 2 query / 1 KV heads of 64, MLP 344, vocab 301, 2 layers. */
    static ModelConfig config() { return TinyLlama.config(128, 344, 2, 2, 1, 301, false); }

    static Batch batch(int t, long seed) {
        Random r = new Random(seed);
        int[] ids = new int[t];
        for (int i = 0; i < t; i++) {
            ids[i] = r.nextInt(301);
        }
        return Batch.ofDocument(ids);
    }

    static Map<String, float[]> grads(LlamaModel m) {
        Map<String, float[]> g = new HashMap<>();
        m.grads().byName().forEach((n, t) -> g.put(n, m.device().read(t)));
        return g;
    }

    @ParameterizedTest
    @MethodSource("devices")
    void checkpointModesGiveTheSameGradients(String dev) {
        try (Device d = open(dev); LlamaModel m = new LlamaModel(config(), d, Precision.BF16, Checkpointing.NONE)) {
            m.initialize(3);
            Batch b = batch(77, 1);
            Map<Checkpointing, Map<String, float[]>> byMode = new HashMap<>();
            for (Checkpointing c : Checkpointing.values()) {
                m.setCheckpointing(c);
                m.grads().zero();
                m.forwardBackward(b, 1f);
                byMode.put(c, grads(m));
            }
            for (String name : byMode.get(Checkpointing.NONE).keySet()) {
                float[] none = byMode.get(Checkpointing.NONE).get(name);
                for (Checkpointing c : new Checkpointing[] {Checkpointing.DEVICE, Checkpointing.OFFLOAD}) {
                    float[] other = byMode.get(c).get(name);
                    for (int i = 0; i < none.length; i++) {
                        // the GPU attention backward sums dq with atomics, so its order (not its math) may differ
                        assertThat((double) other[i]).as(c + " " + name + "[" + i + "]")
                                .isCloseTo(none[i], org.assertj.core.data.Offset.offset(1e-2 * Math.abs(none[i]) + 1e-6));
                    }
                }
            }
            assertThat(d.hostMemory().current(MemoryCategory.CHECKPOINTS)).isZero();
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void gradientsMatchFiniteDifferencesOfTheLoss(String dev) {
        try (Device d = open(dev); LlamaModel m = new LlamaModel(config(), d, Precision.FP32, Checkpointing.DEVICE)) {
            m.initialize(5);
            Batch b = batch(70, 2);
            m.grads().zero();
            m.forwardBackward(b, 1f);
            Random r = new Random(7);
            for (String name : new String[] {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
                    "model.layers.1.input_layernorm.weight", "model.embed_tokens.weight", "lm_head.weight"}) {
                Tensor w = m.weights().get(name);
                float[] grad = d.read(m.grads().get(name));
                float[] values = d.read(w);
                for (int s = 0; s < 3; s++) {
                    int i = largestOrRandom(grad, r, s);
                    double eps = 1e-2, orig = values[i];
                    values[i] = (float) (orig + eps);
                    d.write(w, values);
                    double up = m.loss(b);
                    values[i] = (float) (orig - eps);
                    d.write(w, values);
                    double down = m.loss(b);
                    values[i] = (float) orig;
                    d.write(w, values);
                    double numeric = (up - down) / (2 * eps);
                    assertThat((double) grad[i]).as(name + "[" + i + "] analytic vs numeric " + numeric)
                            .isCloseTo(numeric, org.assertj.core.data.Offset.offset(0.05 * Math.abs(numeric) + 2e-4));
                }
            }
        }
    }

    /** The largest gradient entry first (a well-conditioned check), then random ones. */
    static int largestOrRandom(float[] g, Random r, int sample) {
        if (sample > 0) {
            return r.nextInt(g.length);
        }
        int best = 0;
        for (int i = 1; i < g.length; i++) {
            if (Math.abs(g[i]) > Math.abs(g[best])) {
                best = i;
            }
        }
        return best;
    }

    @ParameterizedTest
    @MethodSource("devices")
    void trainingStepsLowerTheLoss(String dev) {
        try (Device d = open(dev); LlamaModel m = new LlamaModel(config(), d, Precision.BF16, Checkpointing.OFFLOAD)) {
            m.initialize(11);
            Batch b = batch(64, 3);
            TrainingConfig c = TrainingConfig.defaults(8).withLearningRate(3e-3, 3e-4);
            try (Trainer t = new Trainer(m, c, Precision.BF16)) {
                StepResult first = t.step(List.of(b));
                StepResult last = first;
                for (int i = 0; i < 7; i++) {
                    last = t.step(List.of(b));
                }
                assertThat(last.loss()).isLessThan(first.loss() - 0.5);
                assertThat(first.devicePeak().get(MemoryCategory.WEIGHTS)).isPositive();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void fp16TrainingScalesTheLossAndLowersIt(String dev) {
        TrainingConfig c = TrainingConfig.defaults(8).withLearningRate(3e-3, 3e-4);
        Batch b = batch(64, 3);
        double fp32Norm;
        try (Device d = open(dev)) {
            try (LlamaModel m = initialized(config(), d, Precision.FP32, 11);
                 Trainer t = new Trainer(m, c, Precision.FP32)) {
                fp32Norm = t.step(List.of(b)).gradNorm();
            }
            // the trainer copies the FP32 master from the weights it is given: initialise first
            try (LlamaModel m = initialized(config(), d, Precision.FP16, 11);
                 Trainer t = new Trainer(m, c, Precision.FP16, Optimizer.Placement.DEVICE)) {
                assertThat(m.weights().get("lm_head.weight").dtype()).isEqualTo(DType.FP16);
                StepResult first = t.step(List.of(b));
                assertThat(first.lossScale()).isEqualTo(65536.0);
                assertThat(first.applied()).as("no overflow at the initial scale").isTrue();
                // gradients computed for loss × 65536 in FP16, unscaled in FP32: the FP32 model's norm
                assertThat(first.gradNorm()).isCloseTo(fp32Norm, org.assertj.core.data.Offset.offset(1e-2 * fp32Norm));
                StepResult last = first;
                for (int i = 0; i < 7; i++) {
                    last = t.step(List.of(b));
                }
                assertThat(last.loss()).isLessThan(first.loss() - 0.5);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void generationTakesTheArgmaxOfLogitsComputedByHand(String dev) {
        int[] prompt = {3, 17, 5, 5, 300, 1, 22, 9};
        try (Device d = open(dev); LlamaModel m = new LlamaModel(config(), d, Precision.FP32, Checkpointing.NONE)) {
            m.initialize(42);
            // matrices scaled up so the logits are well apart (no argmax decided by rounding)
            for (Tensor t : m.weights().all()) {
                if (!t.name().endsWith("norm.weight")) {
                    float[] w = d.read(t);
                    for (int i = 0; i < w.length; i++) {
                        w[i] *= 10f;
                    }
                    d.write(t, w);
                }
            }
            Generator g = new Generator(m, Set.of());
            int[] out = g.generate(prompt, 6).tokens();
            assertThat(out).hasSize(6);
            int[] context = prompt;
            for (int token : out) {
                double[] logits = GeneratorTest.logitsByHand(m, context);
                double max = java.util.Arrays.stream(logits).max().orElseThrow();
                // the generated token is the argmax up to the device's rounding (cuBLAS may sum in another order)
                assertThat(logits[token]).as("logit of %d after %s", token, java.util.Arrays.toString(context))
                        .isCloseTo(max, org.assertj.core.data.Offset.offset(1e-4 * Math.abs(max) + 1e-5));
                context = java.util.Arrays.copyOf(context, context.length + 1);
                context[context.length - 1] = token;
            }
            assertThat(g.generate(prompt, 6).tokens()).as("deterministic").containsExactly(out);
            assertThat(g.generate(prompt, 3).tokens()).containsExactly(java.util.Arrays.copyOf(out, 3));
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void eachOptimizerPlacementTakesTheReferenceAdamWStep(String dev) {
        TrainingConfig c = TrainingConfig.defaults(4).withLearningRate(3e-3, 3e-4);
        try (Device d = open(dev)) {
            for (Optimizer.Placement placement : Optimizer.Placement.values()) {
                try (LlamaModel m = initialized(config(), d, Precision.BF16, 13);
                     Trainer t = new Trainer(m, c, Precision.BF16, placement)) {
                    // the reference: FP32 master weights from the BF16 ones, moments at zero, all in double
                    Map<String, double[]> master = new LinkedHashMap<>(), mom = new HashMap<>(), vel = new HashMap<>();
                    m.weights().byName().forEach((name, w) -> {
                        master.put(name, toDouble(d.read(w)));
                        mom.put(name, new double[(int) w.numel()]);
                        vel.put(name, new double[(int) w.numel()]);
                    });
                    for (int step = 1; step <= 3; step++) {
                        StepResult r = t.step(List.of(batch(48, 4)));
                        assertThat(r.applied()).isTrue();
                        // the gradients the step used are still in grads() (BF16, loss scale 1)
                        Map<String, double[]> grads = new HashMap<>();
                        double sumSquares = 0;
                        for (var e : m.grads().byName().entrySet()) {
                            double[] g = toDouble(d.read(e.getValue()));
                            grads.put(e.getKey(), g);
                            for (double x : g) {
                                sumSquares += x * x;
                            }
                        }
                        double norm = Math.sqrt(sumSquares);
                        assertThat(r.gradNorm()).isCloseTo(norm, org.assertj.core.data.Offset.offset(1e-6 * norm));
                        double clip = Math.min(1.0, c.maxGradNorm() / (norm + 1e-6));
                        for (String name : master.keySet()) {
                            double[] g = grads.get(name);
                            for (int i = 0; i < g.length; i++) {
                                g[i] *= clip;
                            }
                            boolean decay = !name.endsWith("norm.weight");
                            AdamWReference.step(master.get(name), g, mom.get(name), vel.get(name), c.learningRateAt(step),
                                    c.beta1(), c.beta2(), c.epsilon(), decay ? c.weightDecay() : 0.0, step);
                            float[] got = d.read(t.optimizer().master().get(name));
                            double[] want = master.get(name);
                            // an update is ~lr = 3e-3; FP32 arithmetic (Java or the kernel) is within 2e-6 of double
                            for (int i = 0; i < got.length; i++) {
                                if (Math.abs(got[i] - want[i]) > 2e-6) {
                                    assertThat((double) got[i]).as("%s %s master %s[%d] after step %d", dev, placement.id,
                                            name, i, step).isCloseTo(want[i], org.assertj.core.data.Offset.offset(2e-6));
                                }
                            }
                        }
                    }
                    boolean onGpu = t.optimizer().master().all().iterator().next().onDevice();
                    assertThat(onGpu).as("master weights in GPU memory").isEqualTo(dev.equals("cuda") && placement == Optimizer.Placement.DEVICE);
                }
            }
        }
    }

    static LlamaModel initialized(ModelConfig config, Device d, Precision p, long seed) {
        LlamaModel m = new LlamaModel(config, d, p, Checkpointing.DEVICE);
        m.initialize(seed);
        return m;
    }

    static double[] toDouble(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i];
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource("devices")
    void theOptimizerOnTheDeviceMatchesTheOffloadedOne(String dev) {
        assumeTrue(!dev.equals("cpu"), "on the CPU both placements are the same memory and code (each is checked "
                + "against the reference AdamW instead); on a GPU one runs the AdamW kernel, the other Java on the host");
        try (Device d = open(dev)) {
            double[][] losses = new double[2][];
            float[][] weights = new float[2][];
            Optimizer.Placement[] placements = {Optimizer.Placement.HOST, Optimizer.Placement.DEVICE};
            for (int k = 0; k < 2; k++) {
                try (LlamaModel m = new LlamaModel(config(), d, Precision.BF16, Checkpointing.DEVICE)) {
                    m.initialize(13);
                    TrainingConfig c = TrainingConfig.defaults(4).withLearningRate(3e-3, 3e-4);
                    try (Trainer t = new Trainer(m, c, Precision.BF16, placements[k])) {
                        losses[k] = new double[4];
                        for (int s = 0; s < 4; s++) {
                            losses[k][s] = t.step(List.of(batch(48, 4))).loss();
                        }
                        weights[k] = d.read(m.weights().get("model.layers.1.mlp.up_proj.weight"));
                        assertThat(t.optimizer().master().all().iterator().next().onDevice())
                                .as(placements[k].id + " placement in GPU memory").isEqualTo(placements[k] == Optimizer.Placement.DEVICE);
                    }
                }
            }
            for (int s = 0; s < 4; s++) {
                assertThat(losses[1][s]).as("loss at step " + (s + 1)).isCloseTo(losses[0][s],
                        org.assertj.core.data.Offset.offset(1e-3 * Math.abs(losses[0][s])));
            }
            int differing = 0;
            for (int i = 0; i < weights[0].length; i++) {
                if (Math.abs(weights[0][i] - weights[1][i]) > 1e-2 * Math.abs(weights[0][i]) + 1e-6) {
                    differing++;
                }
            }
            // bf16 weights: a one-ulp difference in the FP32 master can round either way
            assertThat(differing).isLessThan(weights[0].length / 100 + 1);
        }
    }
}
