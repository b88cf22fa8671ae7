package dev.longtune.model;

import dev.longtune.data.SpecialTokens;

import java.util.Arrays;
import java.util.Collection;
import java.util.Objects;
import java.util.Set;


/**
 * Greedy decoding with a {@link LlamaModel}: each step runs the model on the context, takes the last position's
 * hidden state through the final RMSNorm and the LM head, and appends the argmax (ties go to the lowest id).
 * Deterministic: the same model and prompt always give the same tokens.
 *
 * <p>No KV cache: every step recomputes the whole prefix ({@link LlamaModel#hiddenAfter} over all the tokens so
 * far), so generating n tokens after a T-token prompt costs about n forward passes of T…T+n tokens. That keeps
 * this class to the model's public forward; the GPU engine will add a cache.
 *
 * <p>With a {@code maxContext}, the model sees only the last {@code maxContext} tokens at each step (the prompt
 * is truncated from the left, and the window slides as tokens are generated); positions start at 0 in the
 * window.
 */
public final class Generator {

    /**
     * What one call of {@link #generate} produced.
     *
     * @param tokens       the generated ids, without the stop token
     * @param stopToken    the stop token that ended generation, or -1 when {@code maxNewTokens} did
     * @param promptTokens tokens of the prompt the model saw at the first step (after truncation)
     * @param seconds      wall time of the whole generation
     */
    public record Generation(int[] tokens, int stopToken, int promptTokens, double seconds) {
        public Generation {
            tokens = tokens.clone();
        }

        @Override
        public int[] tokens() { return tokens.clone(); }

        /** True when a stop token ended generation (it is not part of {@link #tokens()}). */
        public boolean stopped() { return stopToken >= 0; }

        public double tokensPerSecond() { return seconds > 0 ? tokens.length / seconds : 0; }

        @Override
        public boolean equals(Object o) {
            return o instanceof Generation g && Arrays.equals(tokens, g.tokens) && stopToken == g.stopToken
                    && promptTokens == g.promptTokens;
        }

        @Override
        public int hashCode() { return Objects.hash(Arrays.hashCode(tokens), stopToken, promptTokens); }

        @Override
        public String toString() {
            return String.format("%d tokens after a %d-token prompt%s in %.2f s", tokens.length, promptTokens,
                    stopped() ? ", stopped at " + stopToken : "", seconds);
        }
    }

    private final LlamaModel model;
    private final Set<Integer> stopTokens;
    private final int maxContext;

    /**
     * @param stopTokens ids that end generation (not returned); may be empty
     * @param maxContext the most tokens the model sees at a step, or 0 for no limit
     */
    public Generator(LlamaModel model, Collection<Integer> stopTokens, int maxContext) {
        if (maxContext < 0) {
            throw new IllegalArgumentException("maxContext must be ≥ 0 (0: no limit), got " + maxContext);
        }
        this.model = Objects.requireNonNull(model, "model");
        this.stopTokens = Set.copyOf(stopTokens);
        this.maxContext = maxContext;
    }

    public Generator(LlamaModel model, Collection<Integer> stopTokens) {
        this(model, stopTokens, 0);
    }

    /** Stops at the end of an assistant turn ({@code <|eot_id|>}) or of the text ({@code <|end_of_text|>}). */
    public static Generator forChat(LlamaModel model, SpecialTokens special, int maxContext) {
        return new Generator(model, Set.of(special.endOfTurn(), special.endOfText()), maxContext);
    }

    public static Generator forChat(LlamaModel model) {
        return forChat(model, SpecialTokens.LLAMA_3, 0);
    }

    public LlamaModel model() { return model; }

    public Set<Integer> stopTokens() { return stopTokens; }

    public int maxContext() { return maxContext; }

    /** Up to {@code maxNewTokens} tokens after {@code prompt}, ending early at a stop token. */
    public Generation generate(int[] prompt, int maxNewTokens) {
        return generate(prompt, maxNewTokens, token -> { });
    }

    /**
     * As {@link #generate(int[], int)}, telling {@code onToken} each token as it is chosen (the stop token too),
     * e.g. to move a progress bar: without a KV cache every token is a forward pass over the whole context.
     */
    public Generation generate(int[] prompt, int maxNewTokens, java.util.function.IntConsumer onToken) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("generation needs a prompt of at least one token");
        }
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens must be ≥ 0, got " + maxNewTokens);
        }
        long start = System.nanoTime();
        int[] ids = Arrays.copyOf(prompt, prompt.length + maxNewTokens);
        int length = prompt.length;
        int stop = -1;
        for (int step = 0; step < maxNewTokens; step++) {
            int from = maxContext > 0 ? Math.max(0, length - maxContext) : 0;
            int next = nextToken(Arrays.copyOfRange(ids, from, length));
            onToken.accept(next);
            if (stopTokens.contains(next)) {
                stop = next;
                break;
            }
            ids[length++] = next;
        }
        int seen = maxContext > 0 ? Math.min(prompt.length, maxContext) : prompt.length;
        return new Generation(Arrays.copyOfRange(ids, prompt.length, length), stop, seen,
                (System.nanoTime() - start) / 1e9);
    }

    /** The greedy next token after {@code context} (the whole of it: no truncation here). */
    public int nextToken(int[] context) {
        return argmax(lastLogits(context));
    }

    /**
     * Logits (V) of the token after {@code context}, in the model's compute precision as the device's LM-head
     * GEMM leaves them (as Hugging Face's {@code lm_head} output before its {@code .float()}).
     */
    public float[] lastLogits(int[] context) {
        return model.lastLogits(context);
    }

    /** Index of the largest value, the lowest index among equals; NaNs never win. */
    public static int argmax(float[] logits) {
        int best = -1;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < logits.length; i++) {
            if (logits[i] > max || (best < 0 && logits[i] == max)) {
                max = logits[i];
                best = i;
            }
        }
        if (best < 0) {
            throw new IllegalStateException("no finite logit to take the argmax of (all " + logits.length + " are NaN)");
        }
        return best;
    }
}
