package dev.longtune.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** Builders for files the tests write by hand, independent of the writer under test. */
final class TestFiles {

    private TestFiles() {}

    /** An 8-byte little-endian header length, the header as given (no padding added), then the data. */
    static Path safetensors(Path file, String headerJson, byte[] data) throws IOException {
        return safetensors(file, headerJson.getBytes(StandardCharsets.UTF_8).length, headerJson, data);
    }

    /** As above, but with the header length field stated explicitly (to write lies). */
    static Path safetensors(Path file, long statedHeaderLength, String headerJson, byte[] data) throws IOException {
        byte[] header = headerJson.getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(statedHeaderLength).put(header).put(data);
        Files.write(file, out.array());
        return file;
    }

    /** Seeded values in [-2, 2), none zero. */
    static float[] randomFloats(Random random, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            float v;
            do {
                v = random.nextFloat() * 4 - 2;
            } while (v == 0);
            out[i] = v;
        }
        return out;
    }

    /** Seeded non-zero bytes. */
    static byte[] randomBytes(Random random, int n) {
        byte[] out = new byte[n];
        for (int i = 0; i < n; i++) {
            out[i] = (byte) (1 + random.nextInt(255));
        }
        return out;
    }

    /** A tiny Llama {@code config.json} in {@code folder}: hidden 64, intermediate 176, 2 layers, 4 heads, 2 KV heads, vocab 100. */
    static Path tinyLlamaConfig(Path folder, boolean tieWordEmbeddings) throws IOException {
        Files.createDirectories(folder);
        return Files.writeString(folder.resolve("config.json"), """
                {
                  "architectures": ["LlamaForCausalLM"],
                  "model_type": "llama",
                  "hidden_size": 64,
                  "intermediate_size": 176,
                  "num_hidden_layers": 2,
                  "num_attention_heads": 4,
                  "num_key_value_heads": 2,
                  "vocab_size": 100,
                  "max_position_embeddings": 256,
                  "rms_norm_eps": 1e-05,
                  "rope_theta": 500000.0,
                  "tie_word_embeddings": %s,
                  "torch_dtype": "bfloat16"
                }
                """.formatted(tieWordEmbeddings));
    }
}
