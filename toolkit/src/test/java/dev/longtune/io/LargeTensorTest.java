package dev.longtune.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A tensor over 2 GiB (as Llama 3.1 8B's F32 embedding is) read through several mappings. The file is sparse:
 * only the values the test checks are written, so it costs no disk.
 */
class LargeTensorTest {

    @TempDir
    Path dir;

    @Test
    void readsATensorLargerThanOneByteBuffer() throws IOException {
        long elements = (1L << 29) + 16; // 2 GiB + 64 bytes of F32
        String json = "{\"big\":{\"dtype\":\"F32\",\"shape\":[" + elements + "],\"data_offsets\":[0," + elements * 4
                + "]},\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" + elements * 4 + ","
                + (elements * 4 + 8) + "]}}";
        String header = json + " ".repeat((8 - json.length() % 8) % 8);
        long dataStart = 8 + header.length();
        Random random = new Random(2048);
        float[] probe = TestFiles.randomFloats(random, 8);
        long[] at = {0, 1, SafetensorsFile.MAX_WINDOW / 4 - 1, SafetensorsFile.MAX_WINDOW / 4,
                SafetensorsFile.MAX_WINDOW / 4 + 1, elements - 1, elements, elements + 1};
        Path file = dir.resolve("big.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            ByteBuffer start = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length());
            raf.write(start.array());
            raf.write(header.getBytes(StandardCharsets.US_ASCII));
            raf.setLength(dataStart + elements * 4 + 8);
            for (int i = 0; i < at.length; i++) {
                raf.seek(dataStart + at[i] * 4);
                raf.writeInt(Integer.reverseBytes(Float.floatToRawIntBits(probe[i])));
            }
        }

        SafetensorsFile st = SafetensorsFile.open(file);
        TensorEntry big = st.tensor("big");

        assertThat(big.byteSize()).isGreaterThan(Integer.MAX_VALUE);
        assertThat(big.bytes().windowCount()).isEqualTo(2);
        float[] edge = new float[3];
        big.readFloats(at[2], edge, 0, 3); // straddles the two mappings
        assertThat(edge).containsExactly(probe[2], probe[3], probe[4]);
        float[] ends = new float[2];
        big.readFloats(0, ends, 0, 2);
        assertThat(ends).containsExactly(probe[0], probe[1]);
        big.readFloats(elements - 1, ends, 0, 1);
        assertThat(ends[0]).isEqualTo(probe[5]);
        assertThat(st.readFloats("tail")).containsExactly(probe[6], probe[7]);
        assertThatThrownBy(big::data).hasMessageContaining("'big'");
    }
}
