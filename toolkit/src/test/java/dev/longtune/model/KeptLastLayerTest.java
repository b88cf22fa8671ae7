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
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link LlamaModel#setKeepLastLayer}: under checkpointing, the last layer keeps its saved tensors on the device
 * through the loss and its backward uses them instead of recomputing the layer. The kept tensors are the ones the
 * recompute would make, so the loss and every gradient are bit for bit those of recomputing, on every device; the
 * last layer's checkpoint never goes to the host, and its forward runs once.
 */
class KeptLastLayerTest {
    /** device, checkpointing, layers keeping attention, checkpoints brought back ahead. */
    static List<Object[]> cases() {
        List<Object[]> out = new ArrayList<>();
        for (String dev : ModelOnDevicesTest.devices()) {
            out.add(new Object[] {dev, Checkpointing.OFFLOAD, 0, false});
            out.add(new Object[] {dev, Checkpointing.OFFLOAD, 0, true});
            out.add(new Object[] {dev, Checkpointing.OFFLOAD, 2, true});   // every layer keeps attention
            out.add(new Object[] {dev, Checkpointing.OFFLOAD, 1, false});  // the first of two
            out.add(new Object[] {dev, Checkpointing.DEVICE, 0, false});
        }
        return out;
    }

    record Pass(double loss, Map<String, float[]> grads, long hostCheckpoints, int attentionForwards) {}

    /** A device that counts attention's forward calls: one per layer in forward, and one per recomputed layer. */
    static Device counting(Device inner, int[] calls) {
        return (Device) java.lang.reflect.Proxy.newProxyInstance(Device.class.getClassLoader(), new Class<?>[] {Device.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("attentionForward")) {
                        calls[0]++;
                    }
                    try {
                        return method.invoke(inner, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    static Pass pass(LlamaModel m, Batch b, boolean keepLast, int[] calls) {
        m.setKeepLastLayer(keepLast);
        m.grads().zero();
        m.device().hostMemory().resetPeaks();
        calls[0] = 0;
        double loss = m.forwardBackward(b, 1f);
        return new Pass(loss, ModelOnDevicesTest.grads(m), m.device().hostMemory().peak(MemoryCategory.CHECKPOINTS), calls[0]);
    }

    @ParameterizedTest(name = "{0} {1} keep-attention {2} prefetch {3}")
    @MethodSource("cases")
    void theLastLayerKeptTrainsBitForBitAsRecomputed(String dev, Checkpointing ck, int keptAttention, boolean prefetch) {
        ModelConfig c = ModelOnDevicesTest.config();
        int[] calls = {0};
        try (Device inner = ModelOnDevicesTest.open(dev);
             LlamaModel m = new LlamaModel(c, counting(inner, calls), Precision.BF16, ck)) {
            m.initialize(9);
            m.setKeptAttentionLayers(keptAttention);
            m.setPrefetchCheckpoints(prefetch);
            Batch b = SequenceTilingTest.batch();  // two documents, 300 tokens
            Pass recomputed = pass(m, b, false, calls), kept = pass(m, b, true, calls);

            assertThat(kept.loss()).isEqualTo(recomputed.loss());
            recomputed.grads().forEach((name, g) ->
                    assertThat(Arrays.mismatch(kept.grads().get(name), g)).as(name + " bit for bit").isEqualTo(-1));
            // the last layer's attention runs once, in forward (unless its output was kept anyway)
            boolean lastKeepsAttention = keptAttention == c.numLayers();
            assertThat(recomputed.attentionForwards() - kept.attentionForwards()).isEqualTo(lastKeepsAttention ? 0 : 1);
            if (ck == Checkpointing.OFFLOAD) {
                // its input (and attention output and lse, where kept) never went to the host
                long t = b.tokens();
                long input = t * c.hiddenSize() * 2L, attention = t * c.queryDim() * 2L + 4L * c.numHeads() * t;
                assertThat(recomputed.hostCheckpoints() - kept.hostCheckpoints())
                        .isEqualTo(input + (lastKeepsAttention ? attention : 0));
            }
            // nothing left behind on the device or the host
            assertThat(inner.memory().current(MemoryCategory.CHECKPOINTS)).isZero();
            assertThat(inner.memory().current(MemoryCategory.ACTIVATIONS)).isZero();
            assertThat(inner.hostMemory().current(MemoryCategory.CHECKPOINTS)).isZero();
            assertThat(pass(m, b, false, calls).loss()).isEqualTo(recomputed.loss()); // and back
        }
    }

    @Test
    void withoutCheckpointingEveryLayerKeepsItsTensorsAlready() {
        try (Device d = ModelOnDevicesTest.open("cpu");
             LlamaModel m = new LlamaModel(ModelOnDevicesTest.config(), d, Precision.BF16, Checkpointing.NONE)) {
            assertThatThrownBy(() -> m.setKeepLastLayer(true)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("checkpointing none");
            m.setKeepLastLayer(false); // turning it off is always allowed
        }
    }
}
