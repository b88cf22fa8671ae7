package dev.longtune.data;

import java.util.List;

/**
 * Citation quality of one answer against the sentences that hold the facts it should cite, after the citation
 * precision and recall of LongCite (arXiv:2409.02897), with planted facts standing in for its GPT-4 judge:
 * precision = cited ranges that cover a fact sentence / cited ranges; recall = fact sentences covered by some
 * cited range / fact sentences; F1 their harmonic mean. No citation at all scores 0, 0, 0.
 *
 * @param citations        ranges cited in the answer
 * @param correctCitations those that cover a fact sentence
 * @param citedSentences   sentences the ranges span in total (long ranges are cheap recall)
 * @param facts            fact sentences the answer should cite
 * @param factsCited       fact sentences covered by some range
 */
public record CitationScore(int citations, int correctCitations, int citedSentences, int facts, int factsCited) {

    public double precision() {
        return citations == 0 ? 0 : (double) correctCitations / citations;
    }

    public double recall() {
        return facts == 0 ? 0 : (double) factsCited / facts;
    }

    public double f1() {
        double p = precision();
        double r = recall();
        return p + r == 0 ? 0 : 2 * p * r / (p + r);
    }

    /** Means over answers (each answer weighs the same, as LongBench-Cite averages). */
    public record Summary(int answers, double precision, double recall, double f1) {
        @Override
        public String toString() {
            return String.format("%d answers: citation precision %.3f, recall %.3f, F1 %.3f", answers, precision, recall,
                    f1);
        }
    }

    public static Summary summarize(List<CitationScore> scores) {
        if (scores.isEmpty()) {
            return new Summary(0, 0, 0, 0);
        }
        double p = 0;
        double r = 0;
        double f = 0;
        for (CitationScore s : scores) {
            p += s.precision();
            r += s.recall();
            f += s.f1();
        }
        int n = scores.size();
        return new Summary(n, p / n, r / n, f / n);
    }

    @Override
    public String toString() {
        return String.format("precision %.3f (%d/%d), recall %.3f (%d/%d), F1 %.3f", precision(), correctCitations,
                citations, recall(), factsCited, facts, f1());
    }
}
