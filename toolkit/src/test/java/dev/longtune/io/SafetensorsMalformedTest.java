package dev.longtune.io;

import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** Every malformed file is rejected with a message naming the file, the tensor (when there is one) and the problem. */
class SafetensorsMalformedTest {

    @TempDir
    Path dir;

    private final Random random = new Random(1234);

    private static final String TWO = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}}";

    @Test
    void fileShorterThanTheHeaderLength() throws IOException {
        Path file = Files.write(dir.resolve("tiny.safetensors"), new byte[] {5, 1, 2});
        assertMalformed(() -> SafetensorsFile.open(file), file, null, "truncated", "3 bytes");
    }

    @Test
    void headerLengthBeyondTheFileSize() throws IOException {
        Path file = TestFiles.safetensors(dir.resolve("cut.safetensors"), 4096, TWO, TestFiles.randomBytes(random, 20));
        assertMalformed(() -> SafetensorsFile.open(file), file, null, "truncated", "header length 4096");
    }

    @Test
    void dataShorterThanTheOffsets() throws IOException {
        Path file = TestFiles.safetensors(dir.resolve("short.safetensors"), TWO, TestFiles.randomBytes(random, 13));
        assertMalformed(() -> SafetensorsFile.open(file), file, "b", "truncated", "[8, 20]", "13 bytes");
    }

    @Test
    void dataLongerThanTheTensors() throws IOException {
        Path file = TestFiles.safetensors(dir.resolve("long.safetensors"), TWO, TestFiles.randomBytes(random, 28));
        assertMalformed(() -> SafetensorsFile.open(file), file, null, "28 bytes", "only 20");
    }

    @Test
    void headerThatIsNotJson() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
        Path file = TestFiles.safetensors(dir.resolve("json.safetensors"), header, TestFiles.randomBytes(random, 8));
        assertMalformed(() -> SafetensorsFile.open(file), file, null, "header is not valid JSON");
    }

    @Test
    void headerWithADuplicateTensor() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
        Path file = TestFiles.safetensors(dir.resolve("dup.safetensors"), header, TestFiles.randomBytes(random, 16));
        assertMalformed(() -> SafetensorsFile.open(file), file, "a", "named twice");
    }

    @Test
    void headerEntryWithoutShape() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}";
        Path file = TestFiles.safetensors(dir.resolve("noshape.safetensors"), header, TestFiles.randomBytes(random, 8));
        assertMalformed(() -> SafetensorsFile.open(file), file, "a", "no shape");
    }

    @Test
    void negativeDimension() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}";
        Path file = TestFiles.safetensors(dir.resolve("neg.safetensors"), header, TestFiles.randomBytes(random, 8));
        assertMalformed(() -> SafetensorsFile.open(file), file, "a", "shape is [-2]", "non-negative integers");
    }

    @Test
    void offsetsOutOfRange() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}";
        Path file = TestFiles.safetensors(dir.resolve("range.safetensors"), header, TestFiles.randomBytes(random, 8));
        assertMalformed(() -> SafetensorsFile.open(file), file, "a", "out of range", "[8, 0]");
    }

    @Test
    void offsetsThatAreNotAPair() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}";
        Path file = TestFiles.safetensors(dir.resolve("pair.safetensors"), header, TestFiles.randomBytes(random, 8));
        assertMalformed(() -> SafetensorsFile.open(file), file, "a", "data_offsets is [0]", "2 non-negative integers");
    }

    @Test
    void overlappingOffsets() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        Path file = TestFiles.safetensors(dir.resolve("overlap.safetensors"), header, TestFiles.randomBytes(random, 12));
        assertMalformed(() -> SafetensorsFile.open(file), file, "b", "overlap tensor 'a'", "[4, 12]");
    }

    @Test
    void gapBetweenTensors() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}";
        Path file = TestFiles.safetensors(dir.resolve("gap.safetensors"), header, TestFiles.randomBytes(random, 20));
        assertMalformed(() -> SafetensorsFile.open(file), file, "b", "bytes [8, 12)", "unused");
    }

    @Test
    void offsetsThatDoNotMatchDtypeTimesShape() throws IOException {
        String header = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}";
        Path file = TestFiles.safetensors(dir.resolve("size.safetensors"), header, TestFiles.randomBytes(random, 8));
        assertMalformed(() -> SafetensorsFile.open(file), file, "a", "hold 8 bytes", "BF16", "[2, 3]", "needs 12");
    }

    @Test
    void unknownDtype() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F24\",\"shape\":[2],\"data_offsets\":[0,6]}}";
        Path file = TestFiles.safetensors(dir.resolve("dtype.safetensors"), header, TestFiles.randomBytes(random, 6));
        assertMalformed(() -> SafetensorsFile.open(file), file, "a", "unknown dtype 'F24'", "BF16");
    }

    @Test
    void metadataThatIsNotStrings() throws IOException {
        String header = "{\"__metadata__\":{\"step\":12},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        Path file = TestFiles.safetensors(dir.resolve("meta.safetensors"), header, TestFiles.randomBytes(random, 8));
        assertMalformed(() -> SafetensorsFile.open(file), file, null, "__metadata__", "'step'", "not a string");
    }

    static void assertMalformed(ThrowingCallable call, Path file, String tensor, String... problem) {
        MalformedCheckpointException e = catchThrowableOfType(MalformedCheckpointException.class, call);
        assertThat(e).as("expected a MalformedCheckpointException").isNotNull();
        assertThat(e.getMessage()).startsWith(file.toString() + ": ");
        assertThat(e.file()).isEqualTo(file);
        assertThat(e.tensor()).isEqualTo(tensor);
        if (tensor != null) {
            assertThat(e.getMessage()).contains("tensor '" + tensor + "'");
        }
        for (String p : problem) {
            assertThat(e.getMessage()).contains(p);
        }
    }
}
