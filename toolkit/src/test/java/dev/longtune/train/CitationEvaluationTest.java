package dev.longtune.train;

import dev.longtune.data.ChatMessage;
import dev.longtune.data.SpecialTokens;
import dev.longtune.data.SyntheticExample;
import dev.longtune.data.SyntheticLongCite;
import dev.longtune.data.Tokenizer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

class CitationEvaluationTest {

    static final Tokenizer TOKENIZER = new dev.longtune.data.CharTokenizer();

    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void licencesArePresent() {
        assumeFalse(SyntheticLongCite.defaultSources().isEmpty(), "no licence texts in /usr/share/common-licenses");
    }

    static List<SyntheticExample> examples() {
        return SyntheticLongCite.builder().seed(5).examples(3).tokens(400, 800).facts(2).distractors(1).build()
                .generate();
    }

    @Test
    void thePromptIsTheConversationWithoutTheAnswerThenTheAssistantHeader() {
        SyntheticExample e = examples().get(0);
        String text = CitationEvaluation.promptText(e.messages());
        assertThat(text).isEqualTo("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + e.user().strip()
                + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        assertThat(text).doesNotContain(e.answer());
        int[] ids = CitationEvaluation.prompt(e.messages(), TOKENIZER);
        assertThat(ids[0]).isEqualTo(128000);
        assertThat(Arrays.copyOfRange(ids, ids.length - 4, ids.length))
                .containsExactly('t', 128007, '\n', '\n');
        assertThat(TOKENIZER.decode(ids)).isEqualTo(text);
        // a conversation without an answer gets the header all the same
        assertThat(CitationEvaluation.promptText(List.of(ChatMessage.user("hi")))).isEqualTo(
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                        + CitationEvaluation.ASSISTANT_HEADER);
        assertThatThrownBy(() -> CitationEvaluation.promptText(List.of(ChatMessage.assistant("x"))))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void thePerfectAnswerScoresOne() {
        List<SyntheticExample> set = examples();
        List<int[]> prompts = new ArrayList<>();
        CitationEvaluation.Result r = CitationEvaluation.run(set, TOKENIZER, prompt -> {
            prompts.add(prompt);
            SyntheticExample e = set.get(prompts.size() - 1);
            // the reference answer, its end of turn, then junk after it that must be ignored
            return TOKENIZER.encode(e.answer() + SpecialTokens.END_OF_TURN + "<statement>x<cite>[0-0]</cite></statement>");
        });
        assertThat(prompts).hasSize(3);
        for (int i = 0; i < 3; i++) {
            assertThat(prompts.get(i)).containsExactly(CitationEvaluation.prompt(set.get(i).messages(), TOKENIZER));
        }
        assertThat(r.examples()).isEqualTo(3);
        assertThat(r.precision()).isEqualTo(1.0);
        assertThat(r.recall()).isEqualTo(1.0);
        assertThat(r.f1()).isEqualTo(1.0);
        assertThat(r.meanNumbersFound()).isEqualTo(1.0);
        assertThat(r.answers()).containsExactlyElementsOf(set.stream().map(e -> e.answer().strip()).toList());
        assertThat(r.scores()).allSatisfy(s -> assertThat(s.f1()).isEqualTo(1.0));
        assertThat(r.summary().answers()).isEqualTo(3);
    }

    @Test
    void anEmptyAnswerScoresZero() {
        List<SyntheticExample> set = examples();
        CitationEvaluation.Result nothing = CitationEvaluation.run(set, TOKENIZER, prompt -> new int[0]);
        CitationEvaluation.Result justStop = CitationEvaluation.run(set, TOKENIZER, prompt -> new int[] {128009});
        for (CitationEvaluation.Result r : List.of(nothing, justStop)) {
            assertThat(r.precision()).isZero();
            assertThat(r.recall()).isZero();
            assertThat(r.f1()).isZero();
            assertThat(r.meanNumbersFound()).isZero();
            assertThat(r.answers()).containsOnly("");
        }
    }

    @Test
    void aHalfRightAnswerAveragesPerExample() {
        List<SyntheticExample> set = examples();
        // the first example answered perfectly, the others not at all: means of 1, 0, 0
        int[] calls = {0};
        CitationEvaluation.Result r = CitationEvaluation.run(set, TOKENIZER,
                prompt -> calls[0]++ == 0 ? TOKENIZER.encode(set.get(0).answer()) : new int[0]);
        assertThat(r.f1()).isCloseTo(1.0 / 3, within(1e-12));
        assertThat(r.meanNumbersFound()).isCloseTo(1.0 / 3, within(1e-12));
        assertThat(r.numbersFound()).containsExactly(1.0, 0.0, 0.0);
    }

    @Test
    void answerTextCutsAtTheFirstEndOfTurn() {
        assertThat(CitationEvaluation.answerText(" a b <|eot_id|>c<|end_of_text|>")).isEqualTo("a b");
        assertThat(CitationEvaluation.answerText("a<|end_of_text|>b<|eot_id|>")).isEqualTo("a");
        assertThat(CitationEvaluation.answerText("no stop")).isEqualTo("no stop");
    }
}
