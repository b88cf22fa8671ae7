package dev.longtune.data;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class CitationScorerTest {

    private static final List<Integer> FACTS = List.of(12, 40);

    @Test
    void perfect() {
        CitationScore s = CitationScorer.score("<statement>A is 1.<cite>[12-12]</cite></statement>"
                + "<statement>B is 2.<cite>[40-40]</cite></statement>", FACTS);
        assertThat(s.precision()).isEqualTo(1.0);
        assertThat(s.recall()).isEqualTo(1.0);
        assertThat(s.f1()).isEqualTo(1.0);
        assertThat(s).isEqualTo(new CitationScore(2, 2, 2, 2, 2));
    }

    @Test
    void halfOfTheFactsWithOneWrongCitation() {
        // one fact cited right, one citation wrong, second fact missed: precision 1/2, recall 1/2
        CitationScore s = CitationScorer.score("<statement>A is 1.<cite>[12-12]</cite></statement>"
                + "<statement>B is 2.<cite>[39-39]</cite></statement>", FACTS);
        assertThat(s.precision()).isEqualTo(0.5);
        assertThat(s.recall()).isEqualTo(0.5);
        assertThat(s.f1()).isEqualTo(0.5);
    }

    @Test
    void allFactsButHalfTheCitationsWrong() {
        CitationScore s = CitationScorer.score("<statement>A.<cite>[12-12][3-4]</cite></statement>"
                + "<statement>B.<cite>[40-40][77-77]</cite></statement>", FACTS);
        assertThat(s.precision()).isEqualTo(0.5);
        assertThat(s.recall()).isEqualTo(1.0);
        assertThat(s.f1()).isCloseTo(2 / 3.0, within(1e-12));
    }

    @Test
    void none() {
        assertThat(CitationScorer.score("The answer is 1 and 2.", FACTS)).isEqualTo(new CitationScore(0, 0, 0, 2, 0));
        CitationScore wrong = CitationScorer.score("<statement>A.<cite>[1-5]</cite></statement>", FACTS);
        assertThat(wrong.precision()).isZero();
        assertThat(wrong.recall()).isZero();
        assertThat(wrong.f1()).isZero();
    }

    @Test
    void aWideRangeCoveringBothFactsCountsOnceButSpansMuch() {
        CitationScore s = CitationScorer.score("<statement>A and B.<cite>[10-45]</cite></statement>", FACTS);
        assertThat(s.precision()).isEqualTo(1.0);
        assertThat(s.recall()).isEqualTo(1.0);
        assertThat(s.citedSentences()).isEqualTo(36);
    }

    @Test
    void malformedModelOutputIsScoredOnWhatCanBeRead() {
        CitationScore s = CitationScorer.score("<statement>A.<cite>[12-12], [oops]</cite></statement><statement>B.",
                FACTS);
        assertThat(s.citations()).isEqualTo(1);
        assertThat(s.recall()).isEqualTo(0.5);
    }

    @Test
    void summaryAveragesOverAnswers() {
        CitationScore.Summary sum = CitationScore.summarize(List.of(new CitationScore(2, 2, 2, 2, 2),
                new CitationScore(0, 0, 0, 2, 0)));
        assertThat(sum.answers()).isEqualTo(2);
        assertThat(sum.precision()).isEqualTo(0.5);
        assertThat(sum.recall()).isEqualTo(0.5);
        assertThat(sum.f1()).isEqualTo(0.5);
        assertThat(CitationScore.summarize(List.of()).answers()).isZero();
    }
}
