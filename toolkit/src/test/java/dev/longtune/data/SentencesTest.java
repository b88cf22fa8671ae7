package dev.longtune.data;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class SentencesTest {

    @Test
    void splitsParagraphsAndSentences() {
        List<Sentences.Sentence> s = Sentences.split("""
                  GNU GENERAL PUBLIC LICENSE

                  1. Definitions.
                This is the first sentence, wrapped
                over two lines. Is this the second? "Yes," it is! (And a third.) See 2. Short fragments join.

                Version 3 follows. e.g. lower case does not split.""");
        assertThat(s).extracting(Sentences.Sentence::text).containsExactly(
                "GNU GENERAL PUBLIC LICENSE",
                "1. Definitions.",
                "This is the first sentence, wrapped over two lines.",
                "Is this the second?",
                "\"Yes,\" it is!",
                "(And a third.)",
                "See 2. Short fragments join.",
                "Version 3 follows. e.g. lower case does not split.");
        assertThat(s).extracting(Sentences.Sentence::separator).containsExactly("\n\n", " ", " ", " ", " ", " ", "\n\n",
                "\n\n");
    }
}
