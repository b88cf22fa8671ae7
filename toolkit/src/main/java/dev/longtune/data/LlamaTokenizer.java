package dev.longtune.data;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * The Llama 3.x tokenizer, read from a Hugging Face {@code tokenizer.json} by DJL's binding of the Rust
 * {@code tokenizers} library, so ids match {@code transformers} exactly (byte-level BPE, the Llama 3
 * pre-tokenizer regex, {@code ignore_merges}, the 256 added special tokens).
 *
 * <p>Offline: the DJL jar carries the native library for linux-x86_64 (and aarch64, macOS, Windows) and
 * unpacks it once into {@code ~/.djl.ai/tokenizers/} (or {@code $DJL_CACHE_DIR}); nothing is downloaded.
 * The {@code tokenizer.json} comes from {@code environment/fetch-tokenizer.sh}; see {@link TokenizerCache}.
 *
 * <p>Thread-safe. Holds native memory: close it when done.
 */
public final class LlamaTokenizer implements Tokenizer, AutoCloseable {

    private final HuggingFaceTokenizer tokenizer;
    private final Path source;

    private LlamaTokenizer(HuggingFaceTokenizer tokenizer, Path source) {
        this.tokenizer = tokenizer;
        this.source = source;
    }

    /**
     * Reads {@code tokenizerJson} and checks that its special tokens have the Llama 3 ids.
     *
     * @throws IllegalArgumentException when the file is missing or is not a Llama 3 tokenizer
     */
    public static LlamaTokenizer load(Path tokenizerJson) {
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new IllegalArgumentException("no tokenizer file at " + tokenizerJson
                    + ": run environment/fetch-tokenizer.sh to fetch the Llama 3.1 tokenizer.json");
        }
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(tokenizerJson)
                    // BOS is placed by ChatFormat; no truncation or padding: packing decides lengths
                    .optAddSpecialTokens(false)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("cannot load tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
        }
        LlamaTokenizer loaded = new LlamaTokenizer(hf, tokenizerJson);
        try {
            loaded.checkSpecialTokens();
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
        return loaded;
    }

    /** The tokenizer in the default cache ({@link TokenizerCache#llama31()}). */
    public static LlamaTokenizer llama31() {
        return load(TokenizerCache.llama31());
    }

    private void checkSpecialTokens() {
        SpecialTokens ids = SpecialTokens.LLAMA_3;
        Map<String, Integer> expected = Map.of(
                SpecialTokens.BEGIN_OF_TEXT, ids.beginOfText(),
                SpecialTokens.END_OF_TEXT, ids.endOfText(),
                SpecialTokens.START_HEADER, ids.startHeader(),
                SpecialTokens.END_HEADER, ids.endHeader(),
                SpecialTokens.END_OF_TURN, ids.endOfTurn());
        expected.forEach((token, id) -> {
            int[] got = encode(token);
            if (got.length != 1 || got[0] != id) {
                throw new IllegalArgumentException(source + " is not a Llama 3 tokenizer: " + token + " encodes to "
                        + Arrays.toString(got) + ", expected [" + id + "]");
            }
        });
    }

    @Override
    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    @Override
    public String decode(int[] ids) {
        long[] wide = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            wide[i] = ids[i];
        }
        return tokenizer.decode(wide, false);
    }

    @Override
    public SpecialTokens specialTokens() {
        return SpecialTokens.LLAMA_3;
    }

    public Path source() {
        return source;
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    @Override
    public String toString() {
        return "LlamaTokenizer(" + source + ")";
    }
}
