package dev.longtune.train;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class TrainerTest {
    static ModelConfig tiny() throws Exception {
        String json = """
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 56, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 29, "rope_theta": 10000.0}""";
        return ModelConfig.parse("tiny", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "test");
    }

    /** A repeating pattern the model can learn: token i+1 follows token i (mod vocab). */
    static Batch pattern(int vocab, int length, int offset) {
        int[] ids = new int[length];
        for (int i = 0; i < length; i++) {
            ids[i] = (offset + i) % vocab;
        }
        return Batch.ofDocument(ids);
    }

    static Trainer trainer(Precision p, TrainingConfig c) throws Exception {
        return trainer(p, c, ParameterPlacement.DEVICE);
    }

    /** With offloaded parameters the update runs in the background: the checks below must see it finished. */
    static Trainer trainer(Precision p, TrainingConfig c, ParameterPlacement placement) throws Exception {
        LlamaModel m = new LlamaModel(tiny(), new CpuDevice(), p, Checkpointing.DEVICE, placement);
        m.initialize(1);
        Trainer t = new Trainer(m, c, p);
        assertThat(t.overlapsUpdate()).isEqualTo(placement == ParameterPlacement.HOST);
        return t;
    }

    @Test
    void lossFallsOnALearnablePattern() throws Exception {
        TrainingConfig c = TrainingConfig.defaults(40).withLearningRate(1e-2, 1e-3);
        try (Trainer t = trainer(Precision.FP32, c)) {
            double first = t.step(List.of(pattern(29, 24, 0))).loss();
            double last = first;
            for (int s = 1; s < 40; s++) {
                last = t.step(List.of(pattern(29, 24, s))).loss();
            }
            assertThat(first).isCloseTo(Math.log(29), within(0.3)); // near uniform at the start
            assertThat(last).isLessThan(first / 3);
        }
    }

    @Test
    void bf16KeepsBf16WeightsAndAnFp32Master() throws Exception {
        try (Trainer t = trainer(Precision.BF16, TrainingConfig.defaults(5).withLearningRate(1e-2, 1e-3))) {
            for (int s = 0; s < 3; s++) {
                assertThat(t.step(List.of(pattern(29, 16, s))).applied()).isTrue();
            }
            float[] w = t.model().weights().get("model.layers.0.mlp.up_proj.weight").floats();
            float[] master = t.optimizer().master().get("model.layers.0.mlp.up_proj.weight").floats();
            int differ = 0;
            for (int i = 0; i < w.length; i++) {
                assertThat(w[i]).isEqualTo(DType.BF16.round(master[i]));
                differ += w[i] != master[i] ? 1 : 0;
            }
            assertThat(differ).as("master keeps precision the weights lose").isGreaterThan(w.length / 2);
        }
    }

    @ParameterizedTest
    @EnumSource(ParameterPlacement.class)
    void anFp16OverflowSkipsTheStepAndHalvesTheScale(ParameterPlacement placement) throws Exception {
        try (Trainer t = trainer(Precision.FP16, TrainingConfig.defaults(10).withLearningRate(1e-2, 1e-3), placement)) {
            t.lossScaler().restore(1e30, 0); // injects an overflow: scaled gradients exceed FP16's 65504
            float[] before = t.model().weights().get("lm_head.weight").floats().clone();
            StepResult overflow = t.step(List.of(pattern(29, 16, 0)));
            assertThat(overflow.applied()).isFalse();
            assertThat(t.lossScaler().scale()).isEqualTo(5e29);
            assertThat(t.model().weights().get("lm_head.weight").floats()).containsExactly(before);
            t.lossScaler().restore(1024, 0);
            StepResult ok = t.step(List.of(pattern(29, 16, 1)));
            assertThat(ok.applied()).isTrue();
            assertThat(ok.gradNorm()).isFinite();
            assertThat(t.model().weights().get("lm_head.weight").floats()).isNotEqualTo(before);
        }
    }

    @Test
    void twoMicroBatchesOfTheSameDataEqualOneWithTheSameGradients() throws Exception {
        TrainingConfig c = TrainingConfig.defaults(3).withLearningRate(1e-2, 1e-3);
        try (Trainer one = trainer(Precision.FP32, c); Trainer two = trainer(Precision.FP32, c.withGradientAccumulation(2))) {
            Batch b = pattern(29, 20, 3);
            one.step(List.of(b));
            two.step(List.of(b, b));
            float[] a = one.model().weights().get("model.layers.1.self_attn.q_proj.weight").floats();
            float[] bb = two.model().weights().get("model.layers.1.self_attn.q_proj.weight").floats();
            for (int i = 0; i < a.length; i++) {
                assertThat(bb[i]).isCloseTo(a[i], within(1e-6f));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(ParameterPlacement.class)
    void saveAndResumeContinueExactly(ParameterPlacement placement, @TempDir Path dir) throws Exception {
        TrainingConfig c = TrainingConfig.defaults(6).withLearningRate(1e-2, 1e-3);
        List<float[]> continued = new ArrayList<>();
        try (Trainer t = trainer(Precision.BF16, c, placement)) {
            for (int s = 0; s < 3; s++) {
                t.step(List.of(pattern(29, 16, s)));
            }
            TrainingCheckpoint.save(t, Precision.BF16, dir);
            for (int s = 3; s < 5; s++) {
                t.step(List.of(pattern(29, 16, s)));
            }
            t.model().weights().all().forEach(w -> continued.add(w.floats().clone()));
        }
        try (Trainer resumed = TrainingCheckpoint.resume(dir, new CpuDevice())) {
            assertThat(resumed.step()).isEqualTo(3);
            assertThat(resumed.model().parameterPlacement()).isEqualTo(placement);
            for (int s = 3; s < 5; s++) {
                resumed.step(List.of(pattern(29, 16, s)));
            }
            int i = 0;
            for (var w : resumed.model().weights().all()) {
                assertThat(w.floats()).as(w.name()).containsExactly(continued.get(i++));
            }
        }
        // the weights folder is a Hugging Face checkpoint any loader can open
        assertThat(dev.longtune.io.HfCheckpoint.open(dir).names()).contains("lm_head.weight", "model.norm.weight");
    }

    @Test
    void resumeKeepsTheOptimizerPlacement(@TempDir Path dir) throws Exception {
        TrainingConfig c = TrainingConfig.defaults(4);
        try (Trainer t = trainer(Precision.BF16, c)) {
            assertThat(t.optimizer().placement()).isEqualTo(Optimizer.Placement.HOST);
        }
        try (Trainer t = new Trainer(trainer(Precision.BF16, c).model(), c, Precision.BF16, Optimizer.Placement.DEVICE)) {
            t.step(List.of(pattern(29, 16, 0)));
            TrainingCheckpoint.save(t, Precision.BF16, dir);
        }
        try (Trainer resumed = TrainingCheckpoint.resume(dir, new CpuDevice())) {
            assertThat(resumed.optimizer().placement()).isEqualTo(Optimizer.Placement.DEVICE);
        }
        assertThatThrownBy(() -> Optimizer.Placement.parse("gpu"))
                .hasMessageContaining("host (ZeRO-offload) or device");
    }

    @Test
    void learningRateWarmsUpThenDecays() {
        TrainingConfig c = new TrainingConfig(1e-3, 1e-4, 10, 110, 0.9, 0.95, 1e-8, 0.1, 1.0, 1, 1);
        assertThat(c.learningRateAt(1)).isCloseTo(1e-4, within(1e-12));
        assertThat(c.learningRateAt(10)).isCloseTo(1e-3, within(1e-12));
        assertThat(c.learningRateAt(60)).isCloseTo(5.5e-4, within(1e-12)); // half way: the cosine's midpoint
        assertThat(c.learningRateAt(110)).isCloseTo(1e-4, within(1e-12));
    }

    @Test
    void stepsReportMemoryByCategory() throws Exception {
        try (Trainer t = trainer(Precision.BF16, TrainingConfig.defaults(2))) {
            Map<String, Object> json = t.step(List.of(pattern(29, 16, 0))).toJson();
            assertThat(json).containsKeys("step", "loss", "tokens_per_s", "memory");
            @SuppressWarnings("unchecked")
            Map<String, Object> memory = (Map<String, Object>) json.get("memory");
            long params = tiny().totalParameters();
            assertThat(((Number) memory.get("weights")).longValue()).isEqualTo(2 * params);
            assertThat(((Number) memory.get("grads")).longValue()).isEqualTo(2 * params);
            // the host optimizer's FP32 master and moments are host memory, on the CPU device as on a GPU
            assertThat(((Number) memory.get("optimizer")).longValue()).isZero();
            @SuppressWarnings("unchecked")
            Map<String, Object> host = (Map<String, Object>) json.get("host_memory");
            assertThat(((Number) host.get("optimizer")).longValue()).isEqualTo(12 * params);
            assertThat(((Number) memory.get("checkpoints")).longValue()).isPositive();
            assertThat(((Number) memory.get("activations")).longValue()).isPositive();
        }
    }

    @Test
    void stepsReportTheHostOptimizersTimeWithinTheStep() throws Exception {
        // offloaded parameters: the update runs in the background and the next step's units wait for it as needed
        try (Trainer t = trainer(Precision.BF16, TrainingConfig.defaults(3), ParameterPlacement.HOST)) {
            for (int i = 0; i < 3; i++) {
                StepResult r = t.step(List.of(pattern(29, 16, i)));
                assertThat(r.optimizerSeconds()).isPositive().isLessThanOrEqualTo(r.seconds());
                assertThat(r.updateWaitSeconds()).isGreaterThanOrEqualTo(0).isLessThanOrEqualTo(r.seconds());
                if (i == 0) {
                    assertThat(r.updateWaitSeconds()).as("no update before the first step").isZero();
                }
                assertThat(r.toJson()).containsKeys("update_wait_s", "optimizer_s");
            }
        }
    }
}
