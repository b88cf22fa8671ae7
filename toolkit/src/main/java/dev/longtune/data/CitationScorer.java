package dev.longtune.data;

import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** Scores cited answers against known fact sentences; see {@link CitationScore} for the measures. */
public final class CitationScorer {

    private CitationScorer() {
    }

    /** Scores the ranges cited in {@code answer} against the indices of the sentences that hold the facts. */
    public static CitationScore score(CitedAnswer answer, Collection<Integer> factSentences) {
        return score(answer.citations(), factSentences);
    }

    /** Reads a model's answer leniently ({@link CitedAnswer#parseLenient}) and scores it. */
    public static CitationScore score(String answer, Collection<Integer> factSentences) {
        return score(CitedAnswer.parseLenient(answer), factSentences);
    }

    /** Scores an answer to a synthetic example against its planted facts (distractors are not facts). */
    public static CitationScore score(String answer, SyntheticExample example) {
        return score(answer, example.factSentences());
    }

    public static CitationScore score(List<SentenceRange> citations, Collection<Integer> factSentences) {
        Set<Integer> facts = new TreeSet<>(factSentences);
        int correct = 0;
        int spanned = 0;
        Set<Integer> covered = new TreeSet<>();
        for (SentenceRange range : citations) {
            spanned += range.size();
            boolean hit = false;
            for (int fact : facts) {
                if (range.covers(fact)) {
                    covered.add(fact);
                    hit = true;
                }
            }
            if (hit) {
                correct++;
            }
        }
        return new CitationScore(citations.size(), correct, spanned, facts.size(), covered.size());
    }
}
