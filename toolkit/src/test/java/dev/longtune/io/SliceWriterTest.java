package dev.longtune.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Slices written at their places, from several threads, make the files the whole-tensor writers make, byte for byte. */
class SliceWriterTest {
    record Tensor(String name, SafetensorsDType dtype, long[] shape, float[] values) {}

    static List<Tensor> tensors() {
        Random r = new Random(3);
        List<Tensor> out = new ArrayList<>();
        long[][] shapes = {{37, 13}, {131}, {5, 7, 3}, {64, 9}, {1}};
        SafetensorsDType[] types = {SafetensorsDType.BF16, SafetensorsDType.F32, SafetensorsDType.F16, SafetensorsDType.BF16, SafetensorsDType.F32};
        for (int i = 0; i < shapes.length; i++) {
            float[] v = new float[Math.toIntExact(Shapes.elementCount(shapes[i]))];
            for (int j = 0; j < v.length; j++) {
                v[j] = (float) r.nextGaussian();
            }
            out.add(new Tensor("model.t" + (shapes.length - i) + ".weight", types[i], shapes[i], v));
        }
        return out;
    }

    static Map<String, SliceWriter.Spec> specs(List<Tensor> ts) {
        Map<String, SliceWriter.Spec> m = new LinkedHashMap<>();
        ts.forEach(t -> m.put(t.name(), new SliceWriter.Spec(t.dtype(), t.shape())));
        return m;
    }

    /** Every tensor cut into uneven slices, written in shuffled order by four threads. */
    static void writeInSlices(SliceWriter w, List<Tensor> ts) throws Exception {
        record Slice(Tensor t, int from, int to) {}
        List<Slice> slices = new ArrayList<>();
        for (Tensor t : ts) {
            for (int from = 0; from < t.values().length; ) {
                int to = Math.min(t.values().length, from + 1 + from % 17 + 5);
                slices.add(new Slice(t, from, to));
                from = to;
            }
        }
        Collections.shuffle(slices, new Random(5));
        slices.parallelStream().forEach(s -> {
            try {
                w.writeFloats(s.t().name(), s.from(), java.util.Arrays.copyOfRange(s.t().values(), s.from(), s.to()));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    static List<String> listing(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aCheckpointFolderWrittenInSlicesIsTheWholeTensorWritersByteForByte(@TempDir Path dir) throws Exception {
        List<Tensor> ts = tensors();
        for (long maxShard : new long[] {CheckpointWriter.DEFAULT_MAX_SHARD_SIZE, 1500}) { // one file, then several shards
            Path whole = dir.resolve("whole-" + maxShard), sliced = dir.resolve("sliced-" + maxShard);
            CheckpointWriter cw = CheckpointWriter.to(whole).maxShardSize(maxShard);
            ts.forEach(t -> cw.addFloats(t.name(), t.dtype(), t.shape(), t.values()));
            cw.write();
            try (SliceWriter w = SliceWriter.checkpoint(sliced, specs(ts), maxShard)) {
                writeInSlices(w, ts);
                w.finish();
            }
            assertThat(listing(sliced)).isEqualTo(listing(whole));
            for (String f : listing(whole)) {
                assertThat(Files.readAllBytes(sliced.resolve(f))).as(f).isEqualTo(Files.readAllBytes(whole.resolve(f)));
            }
            if (maxShard == 1500) {
                assertThat(listing(whole)).contains(CheckpointIndex.FILE_NAME).hasSizeGreaterThan(2);
            }
        }
    }

    @Test
    void oneFileWrittenInSlicesIsTheSafetensorsWritersByteForByte(@TempDir Path dir) throws Exception {
        List<Tensor> ts = tensors();
        SafetensorsWriter sw = new SafetensorsWriter();
        ts.forEach(t -> sw.addFloats(t.name(), t.dtype(), t.shape(), t.values()));
        sw.write(dir.resolve("whole.safetensors"));
        try (SliceWriter w = SliceWriter.file(dir.resolve("sliced.safetensors"), specs(ts))) {
            writeInSlices(w, ts);
            w.finish();
        }
        assertThat(Files.readAllBytes(dir.resolve("sliced.safetensors"))).isEqualTo(Files.readAllBytes(dir.resolve("whole.safetensors")));
    }

    @Test
    void aMissingSliceOrAStrayOneIsRefusedAndNothingIsLeftInPlace(@TempDir Path dir) throws Exception {
        List<Tensor> ts = tensors();
        Path out = dir.resolve("out.safetensors");
        try (SliceWriter w = SliceWriter.file(out, specs(ts))) {
            Tensor t = ts.get(0);
            w.writeFloats(t.name(), 0, java.util.Arrays.copyOf(t.values(), 10));
            assertThatThrownBy(() -> w.writeFloats(t.name(), t.values().length - 2, new float[5]))
                    .hasMessageContaining("outside");
            assertThatThrownBy(() -> w.writeFloats("model.nope", 0, new float[1])).hasMessageContaining("not in this file");
            assertThatThrownBy(w::finish).hasMessageContaining("a slice missing or written twice");
        }
        assertThat(listing(dir)).isEmpty(); // no partial file, no half-written one in place
    }
}
