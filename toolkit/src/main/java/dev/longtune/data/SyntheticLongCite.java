package dev.longtune.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * A synthetic LongCite-style data set built from real English text on the machine (by default the licence
 * texts in {@code /usr/share/common-licenses}, which every Debian has): a run of consecutive sentences marked
 * {@code <C0>}, {@code <C1>}, …, with facts such as "The secret number of the lighthouse keeper is 4721."
 * planted at random sentence positions, a question about some of them and a reference answer that cites
 * exactly the planted sentences. Distractor facts (about subjects not asked for) make citing the wrong
 * sentence possible, so precision means something.
 *
 * <pre>{@code
 * List<SyntheticExample> set = SyntheticLongCite.builder().seed(7).examples(16).tokens(2048, 8192)
 *         .counter(TokenCounter.of(tokenizer)).build().generate();
 * }</pre>
 *
 * Deterministic: example {@code i} depends only on the seed, {@code i}, the options, the source texts and the
 * token counter. Lengths are approximate: the whole conversation in the Llama 3.1 chat format lands within a
 * sentence or so of the target as the counter counts ({@link TokenCounter#estimate()} when no tokenizer).
 */
public final class SyntheticLongCite {

    /** Licence texts of Debian's base-files, without its symbolic links (GPL → GPL-3 …). */
    public static final List<String> DEFAULT_SOURCES = List.of("Apache-2.0", "Artistic", "CC0-1.0", "GFDL-1.2",
            "GFDL-1.3", "GPL-1", "GPL-2", "GPL-3", "LGPL-2", "LGPL-2.1", "LGPL-3", "MPL-1.1", "MPL-2.0");
    public static final Path DEFAULT_SOURCE_FOLDER = Path.of("/usr/share/common-licenses");

    static final List<String> SUBJECTS = List.of("lighthouse keeper", "clockmaker", "beekeeper", "ferry captain",
            "glassblower", "cartographer", "night watchman", "orchard owner", "bell ringer", "violin maker",
            "stationmaster", "astronomer", "blacksmith", "harbour pilot", "librarian", "tea merchant");

    static final String INSTRUCTION = "Answer the question using the document below. Each sentence of the document"
            + " begins with a marker <C{i}>. Write every sentence of your answer that uses the document as"
            + " <statement>{sentence}<cite>[{first}-{last}]</cite></statement>, where [{first}-{last}] are the"
            + " markers of the document sentences it relies on; a statement may cite several ranges.";

    /** Chat scaffolding around the contents: BOS, three headers and end-of-turns, the "\n\n"s. */
    private static final int CHAT_OVERHEAD_TOKENS = 16;

    private final long seed;
    private final int examples;
    private final int minTokens;
    private final int maxTokens;
    private final int facts;
    private final int distractors;
    private final TokenCounter counter;
    private final List<Sentences.Sentence> corpus;

    private SyntheticLongCite(Builder b) {
        this.seed = b.seed;
        this.examples = b.examples;
        this.minTokens = b.minTokens;
        this.maxTokens = b.maxTokens;
        this.facts = b.facts;
        this.distractors = b.distractors;
        this.counter = b.counter;
        this.corpus = load(b.sources);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The sources in {@link #DEFAULT_SOURCES} that exist on this machine. */
    public static List<Path> defaultSources() {
        return DEFAULT_SOURCES.stream().map(DEFAULT_SOURCE_FOLDER::resolve).filter(Files::isRegularFile).toList();
    }

    public List<SyntheticExample> generate() {
        return IntStream.range(0, examples).mapToObj(this::example).toList();
    }

    /** Writes the set as LongCite JSONL ({@link LongCiteJsonl#write}). */
    public List<SyntheticExample> writeJsonl(Path file) {
        List<SyntheticExample> set = generate();
        LongCiteJsonl.write(file, set.stream().map(SyntheticExample::messages).toList());
        return set;
    }

    /** Example {@code index}, the same whatever else is generated. */
    public SyntheticExample example(int index) {
        // one generator per example, seeded from (seed, index) by SplitMix64's mixing, so examples are independent
        Random random = new Random(mix(seed * 0x9E3779B97F4A7C15L + index));
        int target = minTokens + (maxTokens > minTokens ? random.nextInt(maxTokens - minTokens + 1) : 0);

        List<String> subjects = new ArrayList<>(SUBJECTS);
        Collections.shuffle(subjects, random);
        List<Integer> numbers = new ArrayList<>();
        while (numbers.size() < facts + distractors) {
            int n = 1000 + random.nextInt(9000);
            if (!numbers.contains(n)) {
                numbers.add(n);
            }
        }
        // planted in shuffled order so that asked facts and distractors interleave in the document
        List<PlantedFact> planned = new ArrayList<>();
        for (int i = 0; i < facts + distractors; i++) {
            planned.add(new PlantedFact(-1, subjects.get(i), numbers.get(i)));
        }
        List<PlantedFact> asked = planned.subList(0, facts);
        String question = question(asked);

        // the answer's citations change its length by a token or two only; estimate with placeholders
        int fixed = counter.count(INSTRUCTION + "\n\n[Document Start]\n\n[Document End]\n\n" + question)
                + counter.count(answer(asked.stream().map(f -> new PlantedFact(9999, f.subject(), f.number())).toList()))
                + CHAT_OVERHEAD_TOKENS;
        int budget = target - fixed;
        for (PlantedFact f : planned) {
            budget -= counter.count("<C9999>" + f.text() + " ");
        }

        List<Sentences.Sentence> document = new ArrayList<>();
        int start = random.nextInt(corpus.size());
        int used = 0;
        for (int k = 0; (used < budget || document.size() < planned.size()) && k < 100 * corpus.size(); k++) {
            Sentences.Sentence s = corpus.get((start + k) % corpus.size());
            int cost = counter.count("<C" + (document.size() + facts + distractors) + ">" + s.text() + s.separator());
            if (used + cost > budget && document.size() >= planned.size() && budget - used < cost / 2) {
                break;
            }
            document.add(s);
            used += cost;
        }

        // insertion points: distinct gaps 0..document.size(), in the planned order of facts
        TreeSet<Integer> gaps = new TreeSet<>();
        while (gaps.size() < planned.size()) {
            gaps.add(random.nextInt(document.size() + 1));
        }
        List<Integer> slots = new ArrayList<>(gaps);
        List<Integer> order = IntStream.range(0, planned.size()).boxed().collect(Collectors.toList());
        Collections.shuffle(order, random);
        PlantedFact[] placed = new PlantedFact[planned.size()];
        List<Sentences.Sentence> withFacts = new ArrayList<>(document);
        for (int j = slots.size() - 1; j >= 0; j--) {
            PlantedFact f = planned.get(order.get(j));
            withFacts.add(slots.get(j), new Sentences.Sentence(f.text(), " "));
        }
        for (int j = 0; j < slots.size(); j++) {
            PlantedFact f = planned.get(order.get(j));
            placed[order.get(j)] = new PlantedFact(slots.get(j) + j, f.subject(), f.number());
        }
        List<PlantedFact> askedPlaced = List.of(placed).subList(0, facts);
        List<PlantedFact> distractorsPlaced = List.of(placed).subList(facts, placed.length);

        StringBuilder marked = new StringBuilder();
        for (int i = 0; i < withFacts.size(); i++) {
            Sentences.Sentence s = withFacts.get(i);
            marked.append("<C").append(i).append('>').append(s.text()).append(s.separator());
        }
        String user = INSTRUCTION + "\n\n[Document Start]\n" + marked.toString().stripTrailing() + "\n[Document End]\n\n"
                + question;
        String answer = answer(askedPlaced);
        List<ChatMessage> messages = List.of(ChatMessage.user(user), ChatMessage.assistant(answer));
        int estimated = counter.count(user) + counter.count(answer) + CHAT_OVERHEAD_TOKENS;
        return new SyntheticExample(index, messages, askedPlaced, distractorsPlaced, withFacts.size(), target, estimated);
    }

    static String question(List<PlantedFact> asked) {
        if (asked.size() == 1) {
            return "What is the secret number of the " + asked.get(0).subject() + "?";
        }
        StringBuilder q = new StringBuilder("What are the secret numbers of ");
        for (int i = 0; i < asked.size(); i++) {
            q.append(i == 0 ? "" : i == asked.size() - 1 ? " and " : ", ").append("the ").append(asked.get(i).subject());
        }
        return q.append("?").toString();
    }

    static String answer(List<PlantedFact> asked) {
        return CitedAnswer.format(asked.stream()
                .map(f -> new CitedAnswer.Statement(f.text(), List.of(SentenceRange.of(f.sentence())))).toList());
    }

    private static List<Sentences.Sentence> load(List<Path> sources) {
        List<Sentences.Sentence> all = new ArrayList<>();
        for (Path p : sources) {
            try {
                all.addAll(Sentences.split(Files.readString(p, StandardCharsets.UTF_8)));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read source text " + p + ": " + e.getMessage(), e);
            }
        }
        if (all.isEmpty()) {
            throw new IllegalArgumentException("no source text: none of " + sources + " holds a sentence; pass"
                    + " English text files with sources(…) (by default the licences in " + DEFAULT_SOURCE_FOLDER + ")");
        }
        return all;
    }

    /** SplitMix64's finaliser: spreads nearby seeds over the whole 64-bit range. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    public static final class Builder {
        private long seed = 1;
        private int examples = 8;
        private int minTokens = 2048;
        private int maxTokens = 8192;
        private int facts = 2;
        private int distractors = 1;
        private TokenCounter counter = TokenCounter.estimate();
        private List<Path> sources;

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder examples(int examples) {
            if (examples < 0) {
                throw new IllegalArgumentException("examples must be >= 0, got " + examples);
            }
            this.examples = examples;
            return this;
        }

        /** Each example's length is drawn uniformly from {@code [min, max]} tokens. */
        public Builder tokens(int min, int max) {
            if (min < 256 || max < min) {
                throw new IllegalArgumentException("token range must have 256 <= min <= max, got " + min + ".." + max);
            }
            this.minTokens = min;
            this.maxTokens = max;
            return this;
        }

        public Builder tokens(int exactly) {
            return tokens(exactly, exactly);
        }

        /** Facts asked for per example (1 to 8); their sentences are the ones the answer cites. */
        public Builder facts(int facts) {
            if (facts < 1 || facts > 8) {
                throw new IllegalArgumentException("facts per example must be 1..8, got " + facts);
            }
            this.facts = facts;
            return this;
        }

        /** Facts planted but not asked for (0 to 8). */
        public Builder distractors(int distractors) {
            if (distractors < 0 || distractors > 8) {
                throw new IllegalArgumentException("distractors per example must be 0..8, got " + distractors);
            }
            this.distractors = distractors;
            return this;
        }

        /** How lengths are measured: {@code TokenCounter.of(tokenizer)}, or the default estimate. */
        public Builder counter(TokenCounter counter) {
            this.counter = Objects.requireNonNull(counter, "counter");
            return this;
        }

        public Builder counter(Tokenizer tokenizer) {
            return counter(TokenCounter.of(tokenizer));
        }

        /** English text files to draw sentences from, in this order; default {@link #defaultSources()}. */
        public Builder sources(List<Path> sources) {
            this.sources = List.copyOf(sources);
            return this;
        }

        public SyntheticLongCite build() {
            if (sources == null) {
                sources = defaultSources();
            }
            if (sources.isEmpty()) {
                throw new IllegalArgumentException("no source text: " + DEFAULT_SOURCE_FOLDER + " has none of "
                        + DEFAULT_SOURCES + "; pass English text files with sources(…)");
            }
            return new SyntheticLongCite(this);
        }
    }
}
