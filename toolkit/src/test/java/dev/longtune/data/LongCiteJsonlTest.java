package dev.longtune.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LongCiteJsonlTest {

    private static final String GOOD = """
            {"messages": [{"role": "user", "content": "Please answer.\\n\\n[Document Start]\\n<C0>Cats purr. <C1>Dogs bark. <C2>Birds sing.\\n[Document End]\\n\\nWhat do cats and birds do?"}, {"role": "assistant", "content": "<statement>Cats purr.<cite>[0-0]</cite></statement> <statement>Birds sing.<cite>[2-2]</cite></statement>"}], "idx": 7}""";

    @TempDir
    Path dir;

    private Path file(String... lines) throws IOException {
        Path f = dir.resolve("data.jsonl");
        Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }

    @Test
    void readsRecordsWithTheirLineNumbers() throws IOException {
        Path f = file(GOOD, "", "[{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"u\"},"
                + " {\"role\": \"assistant\", \"content\": \"a\"}]");
        List<LongCiteExample> records = LongCiteJsonl.read(f);
        assertThat(records).hasSize(2);
        LongCiteExample first = records.get(0);
        assertThat(first.line()).isEqualTo(1);
        assertThat(first.source()).isEqualTo(f);
        assertThat(first.messages()).extracting(ChatMessage::role)
                .containsExactly(ChatMessage.Role.USER, ChatMessage.Role.ASSISTANT);
        assertThat(first.user()).contains("<C1>Dogs bark.");
        assertThat(first.sentenceCount()).isEqualTo(3);
        assertThat(first.citedAnswer().citations()).containsExactly(SentenceRange.of(0), SentenceRange.of(2));
        // a bare list of messages (LongCite's CoF pipeline output) on line 3, after a blank line
        assertThat(records.get(1).line()).isEqualTo(3);
        assertThat(records.get(1).messages().get(0)).isEqualTo(ChatMessage.system("s"));
        assertThat(records.get(1).assistant()).isEqualTo("a");
    }

    @Test
    void lossOnlyOnTheAnswer() throws IOException {
        LongCiteExample e = LongCiteJsonl.read(file(GOOD)).get(0);
        CharTokenizer t = new CharTokenizer();
        TokenizedExample tokens = e.tokenize(new ChatFormat(t));
        StringBuilder trained = new StringBuilder();
        for (int label : tokens.labels()) {
            if (label != Tokenizer.IGNORE_INDEX) {
                trained.append(t.decode(new int[] {label}));
            }
        }
        assertThat(trained.toString()).isEqualTo(e.assistant() + "<|eot_id|>");
    }

    @Test
    void writesWhatItReads() throws IOException {
        List<ChatMessage> chat = List.of(ChatMessage.user("Doc \"quoted\"\n<C0>x"), ChatMessage.assistant("é ✓"));
        for (String name : List.of("out.jsonl", "out.jsonl.gz")) {
            Path out = dir.resolve(name);
            LongCiteJsonl.write(out, List.of(chat, chat));
            List<LongCiteExample> back = LongCiteJsonl.read(out);
            assertThat(back).hasSize(2);
            assertThat(back.get(1).messages()).isEqualTo(chat);
            assertThat(back.get(1).line()).isEqualTo(2);
        }
        assertThat(Files.readAllLines(dir.resolve("out.jsonl")).get(0)).startsWith("{\"messages\":[{\"role\":\"user\"");
    }

    @Test
    void streamsLazily() throws IOException {
        // the bad record on line 3 is not reached when only two are taken
        Path f = file(GOOD, GOOD, "{not json");
        try (Stream<LongCiteExample> s = LongCiteJsonl.stream(f)) {
            assertThat(s.limit(2).count()).isEqualTo(2);
        }
        assertThatThrownBy(() -> LongCiteJsonl.read(f)).isInstanceOf(DataFileException.class)
                .hasMessageStartingWith(f + ":3: not valid JSON");
    }

    @Test
    void errorsNameFileLineAndField() throws IOException {
        assertError("[1, 2]", 2, "[0]", "expected an object {role, content}, found a number");
        assertError("{\"conversation\": []}", 2, "messages", "missing");
        assertError("{\"messages\": {\"role\": \"user\"}}", 2, "messages", "expected a list, found an object");
        assertError("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"bot\", \"content\": \"a\"}]}",
                2, "messages[1].role", "unknown role 'bot'");
        assertError("{\"messages\": [{\"role\": \"user\", \"content\": 42}, {\"role\": \"assistant\", \"content\": \"a\"}]}",
                2, "messages[0].content", "expected a string, found a number");
        assertError("{\"messages\": [{\"content\": \"q\"}]}", 2, "messages[0].role", "missing");
        assertError("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}", 2, "messages", "no assistant message");
        assertError("{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}]}", 2, "messages", "no user message");
        assertError("\"just text\"", 2, "", "expected a JSON object with \"messages\", found a string");
        assertError(GOOD + " {}", 2, "", "not valid JSON");
    }

    private void assertError(String badLine, int line, String field, String problem) throws IOException {
        Path f = file(GOOD, badLine, GOOD);
        assertThatThrownBy(() -> LongCiteJsonl.read(f))
                .isInstanceOfSatisfying(DataFileException.class, e -> {
                    assertThat(e.file()).isEqualTo(f);
                    assertThat(e.line()).isEqualTo(line);
                    assertThat(e.field()).isEqualTo(field);
                    assertThat(e.getMessage()).startsWith(f + ":" + line + ": "
                            + (field.isEmpty() ? "" : "field " + field + ": ")).contains(problem);
                });
    }

    @Test
    void badCitationsNameTheAnswerField() throws IOException {
        Path f = file(GOOD, "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\","
                + " \"content\": \"<statement>x<cite>[3-1]</cite></statement>\"}]}");
        LongCiteExample bad = LongCiteJsonl.read(f).get(1);
        assertThatThrownBy(bad::citedAnswer).isInstanceOf(DataFileException.class)
                .hasMessageStartingWith(f + ":2: field messages[1].content: citation [3-1] ends before it starts");
    }

    @Test
    void missingFileIsReported() {
        assertThatThrownBy(() -> LongCiteJsonl.read(dir.resolve("nope.jsonl")))
                .hasMessageContaining("nope.jsonl");
    }
}
