package dev.longtune.data;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

class SyntheticLongCiteTest {

    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void licencesArePresent() {
        assumeFalse(SyntheticLongCite.defaultSources().isEmpty(), "no licence texts in /usr/share/common-licenses");
    }

    private static SyntheticLongCite.Builder set() {
        return SyntheticLongCite.builder().seed(42).examples(6).tokens(2048, 8192);
    }

    /** The text after marker {@code <C{i}>} up to the next marker or the end of the document. */
    private static String sentence(String user, int i) {
        Matcher m = Pattern.compile("<C" + i + ">(.*?)(?=<C\\d+>|\\n\\[Document End])", Pattern.DOTALL).matcher(user);
        assertThat(m.find()).as("marker <C%d>", i).isTrue();
        return m.group(1).strip();
    }

    @Test
    void sameSeedSameSetOtherSeedOtherSet() {
        List<SyntheticExample> a = set().build().generate();
        List<SyntheticExample> b = set().build().generate();
        assertThat(a).isEqualTo(b);
        List<SyntheticExample> c = set().seed(43).build().generate();
        assertThat(c.get(0).messages()).isNotEqualTo(a.get(0).messages());
        // example i does not depend on how many are generated
        assertThat(set().examples(2).build().generate()).isEqualTo(a.subList(0, 2));
        assertThat(set().build().example(4)).isEqualTo(a.get(4));
    }

    @Test
    void plantedFactsAreInTheTextAtTheirMarkersAndCitedInTheAnswer() {
        for (SyntheticExample e : set().facts(3).distractors(2).build().generate()) {
            String user = e.user();
            assertThat(e.facts()).hasSize(3);
            assertThat(e.distractors()).hasSize(2);
            for (PlantedFact f : e.facts()) {
                assertThat(sentence(user, f.sentence())).isEqualTo(f.text());
                assertThat(user).contains("the " + f.subject());
            }
            for (PlantedFact f : e.distractors()) {
                assertThat(sentence(user, f.sentence())).isEqualTo(f.text());
            }
            // markers run 0..n-1 in order
            assertThat(new LongCiteExample(Path.of("synthetic"), 1, e.messages()).sentenceCount())
                    .isEqualTo(e.sentences());
            assertThat(sentence(user, e.sentences() - 1)).isNotEmpty();

            CitedAnswer answer = CitedAnswer.parse(e.answer());
            assertThat(answer.statements()).hasSize(3);
            assertThat(answer.citations()).extracting(SentenceRange::first)
                    .containsExactlyElementsOf(e.factSentences());
            assertThat(CitationScorer.score(e.answer(), e).f1()).isEqualTo(1.0);
            assertThat(e.numbersFound(e.answer())).isEqualTo(1.0);
            // the question names the facts asked for, not the distractors
            String question = user.substring(user.lastIndexOf("[Document End]"));
            e.facts().forEach(f -> assertThat(question).contains(f.subject()));
            e.distractors().forEach(f -> assertThat(question).doesNotContain(f.subject()));
        }
    }

    @Test
    void lengthsFollowTheTargetByEstimate() {
        for (SyntheticExample e : set().examples(10).build().generate()) {
            assertThat(e.targetTokens()).isBetween(2048, 8192);
            assertThat(e.estimatedTokens()).isCloseTo(e.targetTokens(), org.assertj.core.data.Percentage.withPercentage(5));
        }
    }

    @Test
    void lengthsFollowTheTargetInRealTokens() {
        LlamaTokenizer t = RealTokenizer.llama31OrSkip();
        ChatFormat format = new ChatFormat(t);
        for (SyntheticExample e : set().counter(t).build().generate()) {
            int actual = format.encode(e.messages()).length();
            assertThat(actual).isCloseTo(e.targetTokens(), org.assertj.core.data.Percentage.withPercentage(3));
            assertThat(e.estimatedTokens()).isCloseTo(actual, org.assertj.core.data.Percentage.withPercentage(1));
        }
    }

    @Test
    void writesLongCiteJsonlThatReadsBack(@TempDir Path dir) {
        Path file = dir.resolve("synthetic.jsonl");
        List<SyntheticExample> written = set().examples(3).build().writeJsonl(file);
        List<LongCiteExample> read = LongCiteJsonl.read(file);
        assertThat(read).hasSize(3);
        for (int i = 0; i < 3; i++) {
            assertThat(read.get(i).messages()).isEqualTo(written.get(i).messages());
            assertThat(read.get(i).citedAnswer().citations()).extracting(SentenceRange::first)
                    .containsExactlyElementsOf(written.get(i).factSentences());
        }
    }

    @Test
    void ownSourcesAndOptionsAreChecked(@TempDir Path dir) throws Exception {
        Path text = dir.resolve("story.txt");
        java.nio.file.Files.writeString(text, "The cat sat on the mat. It was warm there.\n\nThe dog slept by the door.");
        SyntheticExample e = SyntheticLongCite.builder().sources(List.of(text)).tokens(400).facts(1).distractors(0)
                .build().example(0);
        assertThat(e.user()).contains("The dog slept by the door.").contains(e.facts().get(0).text());
        assertThat(e.user()).endsWith("What is the secret number of the " + e.facts().get(0).subject() + "?");

        Path empty = dir.resolve("empty.txt");
        java.nio.file.Files.writeString(empty, "\n\n");
        assertThatThrownBy(() -> SyntheticLongCite.builder().sources(List.of(empty)).build())
                .hasMessageContaining("no source text");
        assertThatThrownBy(() -> SyntheticLongCite.builder().facts(0)).hasMessageContaining("1..8");
        assertThatThrownBy(() -> SyntheticLongCite.builder().tokens(4096, 2048)).hasMessageContaining("min <= max");
    }
}
