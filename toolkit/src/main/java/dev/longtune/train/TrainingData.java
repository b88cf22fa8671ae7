package dev.longtune.train;

import dev.longtune.data.ChatFormat;
import dev.longtune.data.LongCiteExample;
import dev.longtune.data.LongCiteJsonl;
import dev.longtune.data.PackedSequence;
import dev.longtune.data.SequencePacker;
import dev.longtune.data.SyntheticExample;
import dev.longtune.data.SyntheticLongCite;
import dev.longtune.data.TokenizedExample;
import dev.longtune.data.Tokenizer;
import dev.longtune.model.Batch;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Training sequences: chat-formatted examples (loss on the assistant's tokens only), packed into
 * sequences of the context length with document boundaries, as model {@link Batch}es. Which batches a step
 * uses is a function of the step alone, so a resumed run sees the same data.
 */
public final class TrainingData {
    public static final String SYNTHETIC = "synthetic-longcite";
    /**
     * One document of random token ids filling each sequence, every token trained: the work a benchmark against
     * another framework's full-length sequences must match (synthetic LongCite packs one example of 75–100% of the
     * context and pads the rest, so it does less attention work).
     */
    public static final String RANDOM_DOCUMENT = "random-document";

    private final List<Batch> batches;
    private final SequencePacker.Stats stats;
    private final List<SyntheticExample> synthetic;
    private final List<CitationEvaluation.Question> questions;

    private TrainingData(List<Batch> batches, SequencePacker.Stats stats, List<SyntheticExample> synthetic,
                         List<CitationEvaluation.Question> questions) {
        if (batches.isEmpty()) {
            throw new IllegalArgumentException("no training sequences: every example was skipped (" + stats + ")");
        }
        this.batches = batches;
        this.stats = stats;
        this.synthetic = synthetic;
        this.questions = questions;
    }

    /**
     * {@code synthetic-longcite}: documents built from the licence texts with planted facts, each about the
     * context length; or a LongCite JSONL file.
     */
    public static TrainingData load(String source, Tokenizer tokenizer, int context, int examples, long seed) {
        return split(source, tokenizer, context, examples, 0, seed).get(0);
    }

    /**
     * As {@link #split}, with {@link #RANDOM_DOCUMENT} too, which draws token ids below {@code vocab} (the model's
     * vocabulary) from {@code seed}.
     */
    public static List<TrainingData> split(String source, Tokenizer tokenizer, int vocab, int context, int examples,
                                           int heldOut, long seed) {
        if (!source.equals(RANDOM_DOCUMENT)) {
            return split(source, tokenizer, context, examples, heldOut, seed);
        }
        if (examples <= 0 || heldOut < 0) {
            throw new IllegalArgumentException("random documents: " + examples + " examples and " + heldOut
                    + " held out; need at least one example and no negative count");
        }
        java.util.Random r = new java.util.Random(seed);
        List<TrainingData> out = new ArrayList<>();
        for (int n : heldOut > 0 ? new int[] {examples, heldOut} : new int[] {examples}) {
            List<Batch> batches = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                batches.add(Batch.ofDocument(r.ints(context, 0, vocab).toArray()));
            }
            SequencePacker.Stats stats = new SequencePacker.Stats(n, n, 0, 0, 0, 0, n, (long) n * context, 0);
            out.add(new TrainingData(batches, stats, List.of(), List.of()));
        }
        return out;
    }

    /**
     * The data split by document into training and held-out evaluation data: the last {@code heldOut} examples
     * (synthetic: {@code examples + heldOut} generated; a JSONL file: its last lines) are packed on their own, so
     * no evaluation document shares a sequence with training ones. Returns [training, evaluation] (evaluation
     * absent when {@code heldOut} is 0).
     */
    public static List<TrainingData> split(String source, Tokenizer tokenizer, int context, int examples, int heldOut,
                                           long seed) {
        if (heldOut < 0) {
            throw new IllegalArgumentException("held-out examples must not be negative, got " + heldOut);
        }
        ChatFormat format = new ChatFormat(tokenizer);
        List<TokenizedExample> tokenized = new ArrayList<>();
        List<SyntheticExample> synthetic = List.of();
        List<LongCiteExample> records = List.of();
        if (source.equals(SYNTHETIC)) {
            int low = Math.max(256, context * 3 / 4), high = Math.max(low + 1, context - 64);
            synthetic = SyntheticLongCite.builder().seed(seed).examples(examples + heldOut).tokens(low, high).counter(tokenizer)
                    .build().generate();
            for (SyntheticExample e : synthetic) {
                tokenized.add(format.encode(e.messages()));
            }
        } else {
            records = LongCiteJsonl.read(Path.of(source));
            for (LongCiteExample e : records) {
                tokenized.add(e.tokenize(format));
            }
        }
        if (heldOut >= tokenized.size()) {
            throw new IllegalArgumentException(heldOut + " held-out examples leave none of the " + tokenized.size() + " to train on");
        }
        int cut = tokenized.size() - heldOut;
        List<TrainingData> out = new ArrayList<>();
        out.add(pack(tokenized.subList(0, cut), context, synthetic.isEmpty() ? synthetic : synthetic.subList(0, cut),
                List.of())); // training data is not asked questions: citation F1 is measured on held-out examples only
        if (heldOut > 0) {
            List<SyntheticExample> heldSynthetic = synthetic.isEmpty() ? synthetic : synthetic.subList(cut, synthetic.size());
            List<CitationEvaluation.Question> questions = synthetic.isEmpty()
                    ? records.subList(cut, records.size()).stream().map(CitationEvaluation.Question::of).toList()
                    : heldSynthetic.stream().map(CitationEvaluation.Question::of).toList();
            out.add(pack(tokenized.subList(cut, tokenized.size()), context, heldSynthetic, questions));
        }
        return out;
    }

    private static TrainingData pack(List<TokenizedExample> tokenized, int context, List<SyntheticExample> synthetic,
                                     List<CitationEvaluation.Question> questions) {
        SequencePacker.Result packed = new SequencePacker(context).pack(tokenized);
        List<Batch> batches = new ArrayList<>();
        for (PackedSequence p : packed.sequences()) {
            batches.add(new Batch(p.inputIds(), p.targets(), p.positions(), p.cuSeqlens()));
        }
        return new TrainingData(batches, packed.stats(), synthetic, questions);
    }

    /** The mean loss of the model over every batch (no gradients): evaluation on held-out data. */
    public double meanLoss(dev.longtune.model.LlamaModel model) {
        double sum = 0;
        for (Batch b : batches) {
            sum += model.loss(b);
        }
        return sum / batches.size();
    }

    public List<Batch> batches() { return batches; }

    public SequencePacker.Stats stats() { return stats; }

    /** Held-out data's questions for citation scoring (synthetic examples or LongCite records); empty for training data. */
    public List<CitationEvaluation.Question> questions() { return questions; }

    /** The synthetic examples (with their planted facts), empty for a JSONL file. */
    public List<SyntheticExample> synthetic() { return synthetic; }

    /** The micro-batches of step {@code step} (1-based): consecutive sequences, wrapping around. */
    public List<Batch> forStep(int step, int microBatches) {
        List<Batch> out = new ArrayList<>();
        for (int j = 0; j < microBatches; j++) {
            out.add(batches.get((int) (((long) (step - 1) * microBatches + j) % batches.size())));
        }
        return out;
    }
}
