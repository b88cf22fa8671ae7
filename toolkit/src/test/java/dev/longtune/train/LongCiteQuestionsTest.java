package dev.longtune.train;

import dev.longtune.data.ChatMessage;
import dev.longtune.data.LongCiteExample;
import dev.longtune.data.LongCiteJsonl;
import dev.longtune.data.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Citation F1 on a LongCite file's held-out records: the evidence is what each reference answer cites. */
class LongCiteQuestionsTest {
    static final Tokenizer TOKENIZER = new dev.longtune.data.CharTokenizer();

    static List<ChatMessage> record(int i) {
        StringBuilder doc = new StringBuilder("Please read.\n");
        for (int s = 0; s < 6; s++) {
            doc.append("<C").append(s).append(">Sentence ").append(s).append(" of record ").append(i).append(". ");
        }
        doc.append("\nWhat is in sentences ").append(i % 6).append(" and 4-5?");
        return List.of(ChatMessage.user(doc.toString()), ChatMessage.assistant("<statement>First.<cite>[" + i % 6 + "-" + i % 6
                + "]</cite></statement> <statement>Then.<cite>[4-5]</cite></statement>"));
    }

    @Test
    void heldOutRecordsBecomeQuestionsWhoseEvidenceIsWhatTheReferenceCites(@TempDir Path dir) {
        Path file = dir.resolve("longcite.jsonl");
        List<List<ChatMessage>> records = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            records.add(record(i));
        }
        LongCiteJsonl.write(file, records);
        List<TrainingData> split = TrainingData.split(file.toString(), TOKENIZER, 4096, 0, 2, 1);
        assertThat(split.get(0).questions()).as("training data is not asked").isEmpty();
        List<CitationEvaluation.Question> questions = split.get(1).questions();
        assertThat(questions).hasSize(2); // the file's last two records
        assertThat(questions.get(0).messages()).isEqualTo(records.get(3));
        assertThat(questions.get(0).evidence()).containsExactly(3, 4, 5);
        assertThat(questions.get(1).evidence()).containsExactly(4, 5);
        assertThat(questions.get(1).synthetic()).isNull();

        // the reference answer itself scores 1; an answer citing only the first sentence, F1 below 1
        CitationEvaluation.Result perfect = CitationEvaluation.score(questions, TOKENIZER,
                prompt -> TOKENIZER.encode(questions.get(indexOf(questions, prompt)).messages().get(1).content() + "<|eot_id|>"));
        assertThat(perfect.f1()).isEqualTo(1.0);
        assertThat(perfect.meanNumbersFound()).as("no secret numbers in LongCite records").isNaN();
        assertThat(perfect.toString()).doesNotContain("secret");
        CitationEvaluation.Result partial = CitationEvaluation.score(questions, TOKENIZER,
                prompt -> TOKENIZER.encode("<statement>Only.<cite>[0-0]</cite></statement><|eot_id|>"));
        assertThat(partial.f1()).isLessThan(0.5);
    }

    private static int indexOf(List<CitationEvaluation.Question> questions, int[] prompt) {
        String text = TOKENIZER.decode(prompt);
        for (int i = 0; i < questions.size(); i++) {
            if (text.contains(questions.get(i).messages().get(0).content().strip())) {
                return i;
            }
        }
        throw new AssertionError("prompt of no question: " + text);
    }
}
