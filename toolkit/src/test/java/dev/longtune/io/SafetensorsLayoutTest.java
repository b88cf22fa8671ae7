package dev.longtune.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The byte layout, checked against files built by hand rather than by the writer. */
class SafetensorsLayoutTest {

    @TempDir
    Path dir;

    @Test
    void readsAFileLaidOutByHand() throws IOException {
        Random random = new Random(42);
        float[] a = TestFiles.randomFloats(random, 6);
        long[] b = {-7L, 1L << 40};
        float[] c = TestFiles.randomFloats(random, 3);
        ByteBuffer data = ByteBuffer.allocate(16 + 24 + 6).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : b) {
            data.putLong(v);
        }
        for (float v : a) {
            data.putFloat(v);
        }
        short[] cBits = new short[3];
        for (int i = 0; i < 3; i++) {
            cBits[i] = (short) (Float.floatToRawIntBits(c[i]) >>> 16); // truncation: exactly representable
            data.putShort(cBits[i]);
        }
        String header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"by hand\"},"
                + "\"b\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[16,40]},"
                + "\"c\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[40,46]}}";
        Path file = TestFiles.safetensors(dir.resolve("hand.safetensors"), header, data.array());

        SafetensorsFile st = SafetensorsFile.open(file);

        assertThat(st.metadata()).isEqualTo(Map.of("format", "pt", "note", "by hand"));
        assertThat(st.names()).containsExactly("a", "b", "c");
        TensorEntry ta = st.tensor("a");
        assertThat(ta.dtype()).isEqualTo(SafetensorsDType.F32);
        assertThat(ta.shape()).containsExactly(2, 3);
        assertThat(ta.byteSize()).isEqualTo(24);
        assertThat(ta.toFloats()).containsExactly(a);
        assertThat(ta.data().order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        assertThat(ta.data().getFloat(4 * 5)).isEqualTo(a[5]);
        TensorEntry tb = st.tensor("b");
        assertThat(tb.data().getLong(0)).isEqualTo(-7L);
        assertThat(tb.data().getLong(8)).isEqualTo(1L << 40);
        float[] cRead = st.readFloats("c");
        for (int i = 0; i < 3; i++) {
            assertThat(Float.floatToRawIntBits(cRead[i])).isEqualTo(cBits[i] << 16);
        }
        assertThat(st.headerLength()).isEqualTo(header.length());
    }

    @Test
    void writerProducesTheReferenceLayout() throws IOException {
        Random random = new Random(7);
        float[] w = TestFiles.randomFloats(random, 4);
        float[] n = TestFiles.randomFloats(random, 2);
        long[] ids = {3, 9, 27};
        ByteBuffer idBytes = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (long id : ids) {
            idBytes.putLong(id);
        }
        Path file = dir.resolve("w.safetensors");
        new SafetensorsWriter()
                .metadata("format", "pt")
                .addFloats("w", SafetensorsDType.F32, new long[] {2, 2}, w)
                .addFloats("n", SafetensorsDType.BF16, new long[] {2}, n)
                .add("ids", SafetensorsDType.I64, new long[] {3}, idBytes.flip())
                .write(file);

        // descending dtype (I64, F32, BF16) then name, as safetensors.torch.save_file lays them out
        String json = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"ids\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[24,40]},"
                + "\"n\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[40,44]}}";
        String padded = json + " ".repeat((8 - json.length() % 8) % 8);
        ByteBuffer expected = ByteBuffer.allocate(8 + padded.length() + 44).order(ByteOrder.LITTLE_ENDIAN);
        expected.putLong(padded.length()).put(padded.getBytes(StandardCharsets.US_ASCII));
        for (long id : ids) {
            expected.putLong(id);
        }
        for (float v : w) {
            expected.putInt(Float.floatToRawIntBits(v));
        }
        for (float v : n) {
            expected.putShort(FloatCodec.floatToBf16(v));
        }

        assertThat(padded.length() % 8).isZero();
        assertThat(Files.readAllBytes(file)).isEqualTo(expected.array());
    }

    @Test
    void headerIsPaddedWithSpacesToAMultipleOfEight() throws IOException {
        for (int nameLength = 1; nameLength <= 8; nameLength++) {
            Path file = dir.resolve("p" + nameLength + ".safetensors");
            new SafetensorsWriter()
                    .addFloats("x".repeat(nameLength), SafetensorsDType.F32, new long[] {1}, new float[] {0.5f})
                    .write(file);
            byte[] bytes = Files.readAllBytes(file);
            long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertThat(n % 8).isZero();
            String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
            assertThat(header.stripTrailing()).endsWith("}");
            assertThat(header.substring(header.stripTrailing().length())).matches(" {0,7}");
            assertThat(bytes.length).isEqualTo(8 + n + 4);
        }
    }
}
