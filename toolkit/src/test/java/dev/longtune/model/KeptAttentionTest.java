package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.Device;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link LlamaModel#setKeepAttention}: with offloaded checkpoints, each layer's attention output and lse go to the
 * host with its input, and backward's recompute takes them back instead of running attention again. The kept values
 * are the ones the recompute would make (attention's forward is deterministic), so the loss and every gradient are
 * bit-identical on every device; the host holds exactly T·(q·e + 4·heads) more bytes per layer.
 */
class KeptAttentionTest {
    static List<Object[]> cases() {
        List<Object[]> out = new ArrayList<>();
        for (String dev : ModelOnDevicesTest.devices()) {
            out.add(new Object[] {dev, Precision.FP32});
            out.add(new Object[] {dev, Precision.BF16});
        }
        return out;
    }

    record Pass(double loss, Map<String, float[]> grads, long hostCheckpoints) {}

    static Pass pass(LlamaModel m, Batch b, boolean keep) {
        m.setKeepAttention(keep);
        m.grads().zero();
        m.device().hostMemory().resetPeaks();
        double loss = m.forwardBackward(b, 1f);
        return new Pass(loss, ModelOnDevicesTest.grads(m), m.device().hostMemory().peak(MemoryCategory.CHECKPOINTS));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void keptAttentionTrainsBitForBitAsRecomputedAttention(String dev, Precision p) {
        ModelConfig c = ModelOnDevicesTest.config();
        try (Device d = ModelOnDevicesTest.open(dev); LlamaModel m = new LlamaModel(c, d, p, Checkpointing.OFFLOAD)) {
            m.initialize(9);
            Batch b = SequenceTilingTest.batch();  // two documents, 300 tokens
            Pass recomputed = pass(m, b, false), kept = pass(m, b, true);
            assertThat(kept.loss()).isEqualTo(recomputed.loss());
            recomputed.grads().forEach((name, g) ->
                    assertThat(java.util.Arrays.mismatch(kept.grads().get(name), g)).as(name + " bit for bit").isEqualTo(-1));
            long e = LlamaModel.dtypeOf(p).bytes, t = b.tokens();
            long perLayer = t * c.queryDim() * e + 4L * c.numHeads() * t;
            assertThat(kept.hostCheckpoints() - recomputed.hostCheckpoints()).isEqualTo(c.numLayers() * perLayer);
            assertThat(pass(m, b, false).loss()).isEqualTo(recomputed.loss()); // and back: nothing left behind
        }
    }

    /**
     * Checkpoints brought back a layer ahead in backward (on the host-to-device stream while a layer computes), with
     * attention kept for some layers: the loss and every gradient are the bits of bringing each back as its layer
     * starts, and nothing is left behind (the planner's extra input and attention output at the backward's peak are
     * checked by PlannerCalibrationTest's own runs).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.longtune.model.ModelOnDevicesTest#devices")
    void checkpointsBroughtBackAheadGiveTheSameBits(String dev) {
        ModelConfig c = ModelOnDevicesTest.config();
        try (Device d = ModelOnDevicesTest.open(dev); LlamaModel m = new LlamaModel(c, d, Precision.BF16, Checkpointing.OFFLOAD)) {
            m.initialize(9);
            Batch b = SequenceTilingTest.batch();
            m.setKeptAttentionLayers(1);
            m.grads().zero();
            double atStart = m.forwardBackward(b, 1f);
            Map<String, float[]> inTurn = ModelOnDevicesTest.grads(m);
            m.setPrefetchCheckpoints(true);
            m.grads().zero();
            d.memory().resetPeaks();
            double ahead = m.forwardBackward(b, 1f);
            assertThat(ahead).isEqualTo(atStart);
            inTurn.forEach((name, g) -> assertThat(java.util.Arrays.mismatch(ModelOnDevicesTest.grads(m).get(name), g))
                    .as(name + " bit for bit").isEqualTo(-1));
            // nothing left behind on the device or the host
            assertThat(d.memory().current(MemoryCategory.CHECKPOINTS)).isZero();
            assertThat(d.memory().current(MemoryCategory.ACTIVATIONS)).isZero();
            assertThat(d.hostMemory().current(MemoryCategory.CHECKPOINTS)).isZero();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.longtune.model.ModelOnDevicesTest#devices")
    void backwardRunsAttentionOnlyInForwardWhenItIsKept(String dev) {
        // the device behind a proxy that counts attention's forward calls: once per layer in forward, and again
        // per layer in backward's recompute unless the output was kept
        ModelConfig c = ModelOnDevicesTest.config();
        int[] calls = {0};
        try (Device inner = ModelOnDevicesTest.open(dev)) {
            Device counting = KeptLastLayerTest.counting(inner, calls);
            try (LlamaModel m = new LlamaModel(c, counting, Precision.FP32, Checkpointing.OFFLOAD)) {
                m.initialize(9);
                Batch b = SequenceTilingTest.batch();
                m.setKeepAttention(false);
                calls[0] = 0;
                m.forwardBackward(b, 1f);
                assertThat(calls[0]).isEqualTo(2 * c.numLayers());
                m.setKeepAttention(true);
                calls[0] = 0;
                m.forwardBackward(b, 1f);
                assertThat(calls[0]).isEqualTo(c.numLayers());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.longtune.model.ModelOnDevicesTest#devices")
    void someLayersKeepTheirAttentionAndTheOthersRecomputeIt(String dev) {
        ModelConfig c = ModelOnDevicesTest.config();
        try (Device d = ModelOnDevicesTest.open(dev);
             LlamaModel m = new LlamaModel(c, d, Precision.BF16, Checkpointing.OFFLOAD)) {
            m.initialize(9);
            Batch b = SequenceTilingTest.batch();
            Pass recomputed = pass(m, b, false);
            m.setKeptAttentionLayers(1);  // the first layer of two
            m.grads().zero();
            m.device().hostMemory().resetPeaks();
            double loss = m.forwardBackward(b, 1f);
            assertThat(loss).isEqualTo(recomputed.loss());
            ModelOnDevicesTest.grads(m).forEach((name, g) ->
                    assertThat(java.util.Arrays.mismatch(recomputed.grads().get(name), g)).as(name + " bit for bit").isEqualTo(-1));
            long perLayer = b.tokens() * c.queryDim() * 2L + 4L * c.numHeads() * b.tokens();
            assertThat(m.device().hostMemory().peak(MemoryCategory.CHECKPOINTS) - recomputed.hostCheckpoints()).isEqualTo(perLayer);
            assertThatThrownBy(() -> m.setKeptAttentionLayers(c.numLayers() + 1)).hasMessageContaining("0 to " + c.numLayers());
        }
    }

    @Test
    void keepingAttentionNeedsOffloadedCheckpoints() {
        try (Device d = ModelOnDevicesTest.open("cpu");
             LlamaModel m = new LlamaModel(ModelOnDevicesTest.config(), d, Precision.BF16, Checkpointing.DEVICE)) {
            assertThatThrownBy(() -> m.setKeepAttention(true)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("checkpointing offload").hasMessageContaining("not device");
            m.setKeepAttention(false); // turning it off is always allowed
        }
    }
}
