package dev.longtune.model;

import dev.longtune.config.Checkpointing;
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
 * The MLP in sequence tiles ({@link LlamaModel#setSequenceTile}) against the untiled layer on each device: 300 tokens
 * in tiles of 64 (four whole tiles and one of 44), two documents, every checkpointing mode. The MLP works row by row,
 * so the loss and every gradient reached through the activations are bit-identical on the CPU; the MLP's own weight
 * gradients add the tiles' products one after another and agree to rounding. On the GPU cuBLAS may pick another
 * algorithm for a tile's row count, so everything agrees to rounding there.
 */
class SequenceTilingTest {
    static final int TOKENS = 300, TILE = 64;
    static final List<String> MLP_WEIGHTS = List.of("mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight");

    static List<Object[]> cases() {
        List<Object[]> out = new ArrayList<>();
        for (String dev : ModelOnDevicesTest.devices()) {
            for (Checkpointing c : Checkpointing.values()) {
                out.add(new Object[] {dev, Precision.FP32, c});
            }
            out.add(new Object[] {dev, Precision.BF16, Checkpointing.OFFLOAD});
        }
        return out;
    }

    static Batch batch() {
        int[] ids = ModelOnDevicesTest.batch(TOKENS, 4).ids();
        // two documents, the second starting inside the third tile
        return Batch.ofDocuments(List.of(java.util.Arrays.copyOfRange(ids, 0, 150), java.util.Arrays.copyOfRange(ids, 150, TOKENS)));
    }

    record Pass(double loss, double forwardLoss, Map<String, float[]> grads, long activationsPeak) {}

    static Pass passWithTile(LlamaModel m, Batch b, int tile) {
        m.setSequenceTile(tile);
        m.grads().zero();
        m.device().memory().resetPeaks();
        double loss = m.forwardBackward(b, 1f);
        long peak = m.device().memory().peak(MemoryCategory.ACTIVATIONS);
        return new Pass(loss, m.loss(b), ModelOnDevicesTest.grads(m), peak);
    }

    @ParameterizedTest(name = "{0} {1} checkpointing {2}")
    @MethodSource("cases")
    void tiledMlpTrainsAsTheUntiledOne(String dev, Precision p, Checkpointing ck) {
        try (Device d = ModelOnDevicesTest.open(dev); LlamaModel m = new LlamaModel(ModelOnDevicesTest.config(), d, p, ck)) {
            m.initialize(9);
            Batch b = batch();
            Pass untiled = passWithTile(m, b, 0), tiled = passWithTile(m, b, TILE);
            // on the CPU the tiles' products differ from the whole sequence's only by FP32 rounding: bit for bit on some
            // CPUs, but OpenBLAS picks its kernels by matrix shape, so 64-row tiles can round differently from 300 rows
            // (seen on an AMD EPYC: 1.4e-9 relative in the loss)
            boolean cpu = dev.equals("cpu");
            double tolerance = p == Precision.FP32 ? 1e-4 : 2e-2;
            if (cpu) {
                assertThat(tiled.loss()).isCloseTo(untiled.loss(), org.assertj.core.data.Offset.offset(1e-7 * untiled.loss()));
                assertThat(tiled.forwardLoss()).isCloseTo(untiled.forwardLoss(), org.assertj.core.data.Offset.offset(1e-7 * untiled.loss()));
            } else {
                assertThat(tiled.loss()).isCloseTo(untiled.loss(), org.assertj.core.data.Offset.offset(1e-3 * untiled.loss()));
                assertThat(tiled.forwardLoss()).isCloseTo(untiled.forwardLoss(), org.assertj.core.data.Offset.offset(1e-3 * untiled.loss()));
            }
            for (var entry : untiled.grads().entrySet()) {
                String name = entry.getKey();
                float[] want = entry.getValue(), got = tiled.grads().get(name);
                double scale = 0;
                for (float v : want) {
                    scale = Math.max(scale, Math.abs(v));
                }
                assertThat(scale).as(name + " has a gradient").isPositive();
                // CPU in FP32: rounding only; 16-bit gradients may land one ulp apart
                double within = cpu && p == Precision.FP32 ? 1e-5 * scale : tolerance * scale;
                for (int i = 0; i < want.length; i++) {
                    assertThat((double) got[i]).as(name + "[" + i + "]").isCloseTo(want[i], org.assertj.core.data.Offset.offset(within));
                }
            }
            // the wide tensors exist for one tile: the backward's peak of activations drops by at least the untiled
            // gate, up and product of the tokens beyond one tile
            long e = LlamaModel.dtypeOf(p).bytes;
            long saved = 3L * (TOKENS - TILE) * ModelOnDevicesTest.config().intermediateSize() * e;
            assertThat(tiled.activationsPeak()).isLessThanOrEqualTo(untiled.activationsPeak() - saved);
        }
    }

    @Test
    void aTileAsLongAsTheSequenceIsTheUntiledLayer() {
        org.junit.jupiter.api.Assumptions.assumeTrue(ModelOnDevicesTest.devices().contains("cpu"),
                "a CPU check (bit for bit); this run tests " + ModelOnDevicesTest.devices());
        try (Device d = ModelOnDevicesTest.open("cpu");
             LlamaModel m = new LlamaModel(ModelOnDevicesTest.config(), d, Precision.BF16, Checkpointing.DEVICE)) {
            m.initialize(9);
            Batch b = batch();
            Pass untiled = passWithTile(m, b, 0), whole = passWithTile(m, b, TOKENS);
            assertThat(whole.loss()).isEqualTo(untiled.loss());
            untiled.grads().forEach((n, g) -> assertThat(java.util.Arrays.mismatch(whole.grads().get(n), g)).as(n).isEqualTo(-1));
            assertThat(whole.activationsPeak()).isEqualTo(untiled.activationsPeak());
        }
    }

    @Test
    void aNegativeTileIsRefusedWithWhatItMustBe() {
        try (Device d = ModelOnDevicesTest.open("cpu");
             LlamaModel m = new LlamaModel(ModelOnDevicesTest.config(), d, Precision.BF16, Checkpointing.DEVICE)) {
            assertThatThrownBy(() -> m.setSequenceTile(-8)).hasMessageContaining("0 (untiled) or a positive number");
        }
    }
}
