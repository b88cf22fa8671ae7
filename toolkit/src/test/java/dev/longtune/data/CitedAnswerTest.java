package dev.longtune.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CitedAnswerTest {

    @Test
    void parsesStatementsAndRanges() {
        String answer = "Here is what the text says.\n<statement>The keeper's number is 4721.<cite>[12-12][30-31]"
                + "</cite></statement> <statement>Nothing cited here.<cite></cite></statement>"
                + "<statement>Single form.<cite>[ 7 ]</cite></statement> Bye.";
        CitedAnswer a = CitedAnswer.parse(answer);
        assertThat(a.statements()).hasSize(3);
        assertThat(a.statements().get(0).text()).isEqualTo("The keeper's number is 4721.");
        assertThat(a.statements().get(0).citations())
                .containsExactly(new SentenceRange(12, 12), new SentenceRange(30, 31));
        assertThat(a.statements().get(1).cited()).isFalse();
        assertThat(a.statements().get(2).citations()).containsExactly(SentenceRange.of(7));
        assertThat(a.citations()).hasSize(3);
        assertThat(a.plainText()).isEqualTo("Here is what the text says.\nThe keeper's number is 4721. Nothing cited"
                + " here.Single form. Bye.");
    }

    @Test
    void statementWithoutCiteAndPlainAnswers() {
        assertThat(CitedAnswer.parse("<statement>Just this.</statement>").statements())
                .containsExactly(new CitedAnswer.Statement("Just this.", List.of()));
        CitedAnswer plain = CitedAnswer.parse("No markup at all.");
        assertThat(plain.statements()).isEmpty();
        assertThat(plain.plainText()).isEqualTo("No markup at all.");
    }

    @Test
    void formatIsTheInverseOfParse() {
        List<CitedAnswer.Statement> statements = List.of(
                new CitedAnswer.Statement("A.", List.of(new SentenceRange(1, 3))),
                new CitedAnswer.Statement("B.", List.of(SentenceRange.of(5), SentenceRange.of(9))));
        String text = CitedAnswer.format(statements);
        assertThat(text).isEqualTo("<statement>A.<cite>[1-3]</cite></statement>"
                + "<statement>B.<cite>[5-5][9-9]</cite></statement>");
        assertThat(CitedAnswer.parse(text).statements()).isEqualTo(statements);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
            "<statement>open                                    | unclosed <statement> at character 0",
            "a <statement>x<statement>y</statement>             | <statement> inside another <statement> at character 14",
            "x</statement>                                      | </statement> without <statement> at character 1",
            "<statement>x<cite>[1-2]</statement>                | unclosed <cite> at character 12",
            "<statement>x<cite>[4-2]</cite></statement>         | citation [4-2] ends before it starts",
            "<statement>x<cite>[1-2], [5-6]</cite></statement>  | unreadable citation ','",
            "<statement>x<cite>C1-C2</cite></statement>         | unreadable citation 'C1-C2'",
            "<statement>x<cite>[1-2]</cite> and more</statement> | text after </cite> inside a statement",
            "<statement>x</cite></statement>                    | </cite> without <cite>"})
    void strictParsingSaysWhatIsWrongAndWhere(String answer, String message) {
        assertThatThrownBy(() -> CitedAnswer.parse(answer.strip()))
                .isInstanceOf(CitedAnswer.FormatException.class)
                .hasMessageContaining(message.strip());
    }

    @Test
    void lenientParsingKeepsWhatItCanRead() {
        CitedAnswer a = CitedAnswer.parseLenient("<statement>A<cite>[1-2], [x] [9-3][4]</cite></statement>"
                + "<statement>B<cite>[5-6]");
        assertThat(a.statements()).hasSize(2);
        assertThat(a.statements().get(0).citations()).containsExactly(new SentenceRange(1, 2), SentenceRange.of(4));
        assertThat(a.statements().get(1).citations()).containsExactly(new SentenceRange(5, 6));
        CitedAnswer nested = CitedAnswer.parseLenient("<statement>A<statement>B<cite>[2-2]</cite></statement>");
        assertThat(nested.statements()).extracting(CitedAnswer.Statement::text).containsExactly("A", "B");
        assertThat(nested.citations()).containsExactly(SentenceRange.of(2));
    }

    @Test
    void rangesAreChecked() {
        assertThat(new SentenceRange(3, 5).covers(4)).isTrue();
        assertThat(new SentenceRange(3, 5).covers(6)).isFalse();
        assertThat(new SentenceRange(3, 5).size()).isEqualTo(3);
        assertThat(new SentenceRange(3, 5)).hasToString("[3-5]");
        assertThatThrownBy(() -> new SentenceRange(5, 3)).hasMessageContaining("0 <= first <= last");
        assertThatThrownBy(() -> new SentenceRange(-1, 3)).hasMessageContaining("0 <= first <= last");
    }
}
