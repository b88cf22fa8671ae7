package dev.longtune.train;

import dev.longtune.data.ChatFormat;
import dev.longtune.data.ChatMessage;
import dev.longtune.data.CitationScore;
import dev.longtune.data.CitationScorer;
import dev.longtune.data.LongCiteExample;
import dev.longtune.data.SentenceRange;
import dev.longtune.data.SpecialTokens;
import dev.longtune.data.SyntheticExample;
import dev.longtune.data.Tokenizer;
import dev.longtune.model.Generator;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.TreeSet;
import java.util.Objects;
import java.util.function.Function;

/**
 * Citation quality of a model's own answers on LongCite-style questions: for each the prompt is the conversation
 * without the reference answer, followed by the assistant header; the model's continuation is decoded, cut at the
 * first {@code <|eot_id|>}, and scored with {@link CitationScorer} against the evidence: a synthetic example's
 * planted fact sentences, or the sentences a LongCite record's reference answer cites. Precision, recall and F1 are
 * averaged over examples (each weighs the same), as is, for synthetic examples, the fraction of asked-for secret
 * numbers the answers state.
 *
 * <pre>{@code
 * Generator g = Generator.forChat(model);
 * CitationEvaluation.Result r = CitationEvaluation.run(examples, tokenizer, g, 200);
 * }</pre>
 */
public final class CitationEvaluation {

    /** Opens the assistant's turn: what the model reads right before it writes its answer. */
    public static final String ASSISTANT_HEADER = SpecialTokens.START_HEADER + ChatMessage.Role.ASSISTANT.wireName()
            + SpecialTokens.END_HEADER + "\n\n";

    private CitationEvaluation() {
    }

    /**
     * A held-out question: the conversation (its last turn the reference answer, left out of the prompt) and the
     * sentences of the context that answer it; {@code synthetic} when it was generated (its secret numbers are then
     * checked too), else null.
     */
    public record Question(List<ChatMessage> messages, Collection<Integer> evidence, SyntheticExample synthetic) {
        public Question {
            messages = List.copyOf(messages);
            evidence = List.copyOf(new TreeSet<>(evidence));
        }

        public static Question of(SyntheticExample e) { return new Question(e.messages(), e.factSentences(), e); }

        /** A LongCite record: its evidence is every sentence its reference answer cites. */
        public static Question of(LongCiteExample e) {
            List<Integer> cited = new ArrayList<>();
            for (SentenceRange r : e.citedAnswer().citations()) {
                for (int i = r.first(); i <= r.last(); i++) {
                    cited.add(i);
                }
            }
            return new Question(e.messages(), cited, null);
        }
    }

    /**
     * Averages over the examples and what was generated for each.
     *
     * @param answers      the decoded answers, cut at the first end-of-turn, one per example in order
     * @param scores       each answer's citation score
     * @param numbersFound each answer's fraction of the asked-for secret numbers it states
     */
    public record Result(double precision, double recall, double f1, double meanNumbersFound, List<String> answers,
                         List<CitationScore> scores, List<Double> numbersFound) {
        public Result {
            answers = List.copyOf(answers);
            scores = List.copyOf(scores);
            numbersFound = List.copyOf(numbersFound);
        }

        public int examples() { return answers.size(); }

        public CitationScore.Summary summary() {
            return new CitationScore.Summary(answers.size(), precision, recall, f1);
        }

        @Override
        public String toString() {
            return Double.isNaN(meanNumbersFound) ? summary().toString()
                    : String.format("%s; secret numbers found %.3f", summary(), meanNumbersFound);
        }
    }

    /** Generates with {@code generator} (up to {@code maxNewTokens} per answer) and scores the answers. */
    public static Result run(List<SyntheticExample> examples, Tokenizer tokenizer, Generator generator, int maxNewTokens) {
        Objects.requireNonNull(generator, "generator");
        return run(examples, tokenizer, prompt -> generator.generate(prompt, maxNewTokens).tokens());
    }

    /**
     * Scores what {@code generate} (prompt ids → generated ids; a stop token at the end, or none) answers to
     * each example, so any decoder, or a test's stand-in, can be evaluated.
     */
    public static Result run(List<SyntheticExample> examples, Tokenizer tokenizer, Function<int[], int[]> generate) {
        return score(examples.stream().map(Question::of).toList(), tokenizer, generate);
    }

    /** Generates with {@code generator} for each question and scores the answers against its evidence. */
    public static Result score(List<Question> questions, Tokenizer tokenizer, Generator generator, int maxNewTokens) {
        Objects.requireNonNull(generator, "generator");
        return score(questions, tokenizer, prompt -> generator.generate(prompt, maxNewTokens).tokens());
    }

    /** As {@link #run(List, Tokenizer, Function)}, for any questions; secret numbers are counted for synthetic ones only. */
    public static Result score(List<Question> questions, Tokenizer tokenizer, Function<int[], int[]> generate) {
        List<String> answers = new ArrayList<>();
        List<CitationScore> scores = new ArrayList<>();
        List<Double> found = new ArrayList<>();
        for (Question q : questions) {
            int[] generated = generate.apply(prompt(q.messages(), tokenizer));
            String answer = answerText(tokenizer.decode(generated));
            answers.add(answer);
            scores.add(CitationScorer.score(answer, q.evidence()));
            found.add(q.synthetic() == null ? Double.NaN : q.synthetic().numbersFound(answer));
        }
        CitationScore.Summary s = CitationScore.summarize(scores);
        double meanFound = found.stream().mapToDouble(Double::doubleValue).filter(d -> !Double.isNaN(d)).average().orElse(Double.NaN);
        return new Result(s.precision(), s.recall(), s.f1(), meanFound, answers, scores, found);
    }

    /**
     * The prompt ids: the chat-rendered conversation up to (without) its final assistant answer, then the
     * assistant header, so the model's next token starts the answer.
     */
    public static int[] prompt(List<ChatMessage> messages, Tokenizer tokenizer) {
        return tokenizer.encode(promptText(messages));
    }

    /** {@link #prompt} as text. */
    public static String promptText(List<ChatMessage> messages) {
        int end = messages.size();
        if (end > 0 && messages.get(end - 1).role() == ChatMessage.Role.ASSISTANT) {
            end--;
        }
        if (end == 0) {
            throw new IllegalArgumentException("a prompt needs at least one message before the answer");
        }
        return ChatFormat.render(messages.subList(0, end)) + ASSISTANT_HEADER;
    }

    /** The generated text up to its first end-of-turn or end-of-text, stripped. */
    static String answerText(String decoded) {
        int cut = decoded.length();
        for (String stop : List.of(SpecialTokens.END_OF_TURN, SpecialTokens.END_OF_TEXT)) {
            int at = decoded.indexOf(stop);
            if (at >= 0) {
                cut = Math.min(cut, at);
            }
        }
        return decoded.substring(0, cut).strip();
    }
}
