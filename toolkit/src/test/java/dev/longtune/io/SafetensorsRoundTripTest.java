package dev.longtune.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SafetensorsRoundTripTest {

    @TempDir
    Path dir;

    @Test
    void f32KeepsEveryBit() throws IOException {
        float[] values = TestFiles.randomFloats(new Random(1), 3 * 5 * 7);
        values[0] = Float.MIN_VALUE;
        values[1] = -Float.MAX_VALUE;
        values[2] = Float.intBitsToFloat(0x7FC01234); // a NaN with a payload
        Path file = dir.resolve("f32.safetensors");
        new SafetensorsWriter().addFloats("t", SafetensorsDType.F32, new long[] {3, 5, 7}, values).write(file);

        float[] back = SafetensorsFile.open(file).readFloats("t");

        assertThat(back).hasSameSizeAs(values);
        for (int i = 0; i < values.length; i++) {
            assertThat(Float.floatToRawIntBits(back[i])).isEqualTo(Float.floatToRawIntBits(values[i]));
        }
    }

    @Test
    void bf16KeepsEightSignificantBits() throws IOException {
        float[] values = TestFiles.randomFloats(new Random(2), 4096);
        Path file = dir.resolve("bf16.safetensors");
        new SafetensorsWriter().addFloats("t", SafetensorsDType.BF16, new long[] {64, 64}, values).write(file);

        TensorEntry t = SafetensorsFile.open(file).tensor("t");
        float[] back = t.toFloats();

        assertThat(t.byteSize()).isEqualTo(2L * values.length);
        for (int i = 0; i < values.length; i++) {
            // round to nearest: within half a unit in the last place, 2^-8 of the value
            assertThat(back[i]).isCloseTo(values[i], org.assertj.core.data.Offset.offset(Math.abs(values[i]) * 0x1p-8f));
            assertThat(back[i]).isEqualTo(FloatCodec.bf16ToFloat(FloatCodec.floatToBf16(values[i])));
        }
    }

    @Test
    void f16KeepsElevenSignificantBits() throws IOException {
        float[] values = TestFiles.randomFloats(new Random(3), 1000);
        Path file = dir.resolve("f16.safetensors");
        new SafetensorsWriter().addFloats("t", SafetensorsDType.F16, new long[] {1000}, values).write(file);

        float[] back = SafetensorsFile.open(file).readFloats("t");

        for (int i = 0; i < values.length; i++) {
            // values in [-2, 2) are normal halves unless below 2^-14; allow the subnormal step there
            float tolerance = Math.max(Math.abs(values[i]) * 0x1p-11f, 0x1p-25f);
            assertThat(back[i]).isCloseTo(values[i], org.assertj.core.data.Offset.offset(tolerance));
        }
    }

    @Test
    void metadataRoundTrips() throws IOException {
        Map<String, String> metadata = Map.of("format", "pt", "longtune.step", "1200",
                "note", "quotes \" and \\ and unicode λ");
        Path file = dir.resolve("meta.safetensors");
        new SafetensorsWriter().metadata(metadata)
                .addFloats("t", SafetensorsDType.F32, new long[] {2}, new float[] {1.5f, -2.25f})
                .write(file);

        assertThat(SafetensorsFile.open(file).metadata()).isEqualTo(metadata);
    }

    @Test
    void integerTensorsAndScalarsRoundTripAsRawBytes() throws IOException {
        Random random = new Random(4);
        byte[] i32 = TestFiles.randomBytes(random, 4 * 6);
        byte[] u8 = TestFiles.randomBytes(random, 5);
        byte[] scalar = TestFiles.randomBytes(random, 8);
        Path file = dir.resolve("raw.safetensors");
        new SafetensorsWriter()
                .add("ids", SafetensorsDType.I32, new long[] {2, 3}, ByteBuffer.wrap(i32))
                .add("mask", SafetensorsDType.U8, new long[] {5}, ByteBuffer.wrap(u8))
                .add("step", SafetensorsDType.I64, new long[] {}, ByteBuffer.wrap(scalar))
                .add("empty", SafetensorsDType.F32, new long[] {0, 4}, ByteBuffer.allocate(0))
                .write(file);

        SafetensorsFile st = SafetensorsFile.open(file);

        assertThat(bytes(st.tensor("ids").data())).isEqualTo(i32);
        assertThat(bytes(st.tensor("mask").data())).isEqualTo(u8);
        assertThat(st.tensor("step").shape()).isEmpty();
        assertThat(st.tensor("step").elementCount()).isEqualTo(1);
        assertThat(bytes(st.tensor("step").data())).isEqualTo(scalar);
        assertThat(st.tensor("empty").toFloats()).isEmpty();
        assertThatThrownBy(() -> st.tensor("ids").toFloats())
                .hasMessageContaining("raw.safetensors").hasMessageContaining("'ids'").hasMessageContaining("I32");
    }

    @Test
    void outputDoesNotDependOnTheOrderTensorsWereAdded() throws IOException {
        Random random = new Random(6);
        float[] x = TestFiles.randomFloats(random, 10);
        float[] y = TestFiles.randomFloats(random, 3);
        float[] z = TestFiles.randomFloats(random, 7);
        Path one = dir.resolve("one.safetensors");
        Path two = dir.resolve("two.safetensors");
        new SafetensorsWriter().metadata("b", "2").metadata("a", "1")
                .addFloats("x", SafetensorsDType.F32, new long[] {10}, x)
                .addFloats("y", SafetensorsDType.BF16, new long[] {3}, y)
                .addFloats("z", SafetensorsDType.F32, new long[] {7}, z)
                .write(one);
        new SafetensorsWriter().metadata("a", "1").metadata("b", "2")
                .addFloats("z", SafetensorsDType.F32, new long[] {7}, z)
                .addFloats("y", SafetensorsDType.BF16, new long[] {3}, y)
                .addFloats("x", SafetensorsDType.F32, new long[] {10}, x)
                .write(two);

        assertThat(Files.readAllBytes(one)).isEqualTo(Files.readAllBytes(two));
    }

    @Test
    void tensorsSpanningSeveralMappedWindowsReadWhole() throws IOException {
        Random random = new Random(8);
        float[] big = TestFiles.randomFloats(random, 1000);    // 4000 bytes: 63 windows of 64
        float[] small = TestFiles.randomFloats(random, 5);     // shares windows with its neighbours
        float[] other = TestFiles.randomFloats(random, 9);
        Path file = dir.resolve("windows.safetensors");
        new SafetensorsWriter()
                .addFloats("a.small", SafetensorsDType.F32, new long[] {5}, small)
                .addFloats("b.big", SafetensorsDType.F32, new long[] {10, 100}, big)
                .addFloats("c.other", SafetensorsDType.F32, new long[] {9}, other)
                .write(file);

        SafetensorsFile st = SafetensorsFile.open(file, 64);

        TensorEntry t = st.tensor("b.big");
        assertThat(t.bytes().windowCount()).isEqualTo(63);
        assertThat(t.toFloats()).containsExactly(big);
        float[] middle = new float[100];
        t.readFloats(450, middle, 0, 100);
        for (int i = 0; i < 100; i++) {
            assertThat(middle[i]).isEqualTo(big[450 + i]);
        }
        ByteBuffer copy = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
        t.bytes().copyTo(60, copy);
        assertThat(copy.flip().getFloat(0)).isEqualTo(big[15]);
        assertThatThrownBy(t::data).hasMessageContaining("b.big").hasMessageContaining("readFloats");
        assertThat(st.readFloats("a.small")).containsExactly(small);
        assertThat(st.readFloats("c.other")).containsExactly(other);
    }

    @Test
    void copiesATensorFromOneFileToAnother() throws IOException {
        float[] values = TestFiles.randomFloats(new Random(9), 33);
        Path first = dir.resolve("first.safetensors");
        Path second = dir.resolve("second.safetensors");
        new SafetensorsWriter().addFloats("t", SafetensorsDType.BF16, new long[] {3, 11}, values).write(first);

        new SafetensorsWriter().add(SafetensorsFile.open(first).tensor("t")).write(second);

        assertThat(Files.readAllBytes(second)).isEqualTo(Files.readAllBytes(first));
    }

    @Test
    void writerRefusesInconsistentInput() {
        SafetensorsWriter writer = new SafetensorsWriter();
        assertThatThrownBy(() -> writer.addFloats("t", SafetensorsDType.F32, new long[] {2, 2}, new float[] {1, 2, 3}))
                .hasMessageContaining("'t'").hasMessageContaining("4 elements").hasMessageContaining("3 values");
        assertThatThrownBy(() -> writer.add("r", SafetensorsDType.I32, new long[] {2}, ByteBuffer.allocate(6)))
                .hasMessageContaining("'r'").hasMessageContaining("6 bytes").hasMessageContaining("needs 8");
        assertThatThrownBy(() -> writer.addFloats("i", SafetensorsDType.I32, new long[] {1}, new float[] {1}))
                .hasMessageContaining("I32");
        assertThatThrownBy(() -> writer.addFloats("__metadata__", SafetensorsDType.F32, new long[] {1}, new float[] {1}))
                .hasMessageContaining("reserved");
        writer.addFloats("d", SafetensorsDType.F32, new long[] {1}, new float[] {1});
        assertThatThrownBy(() -> writer.addFloats("d", SafetensorsDType.F32, new long[] {1}, new float[] {2}))
                .hasMessageContaining("'d' was added twice");
    }

    private static byte[] bytes(ByteBuffer buffer) {
        byte[] out = new byte[buffer.remaining()];
        buffer.duplicate().get(out);
        return out;
    }
}
