package dev.longtune.data;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ChatFormatTest {

    private final CharTokenizer tokenizer = new CharTokenizer();
    private final ChatFormat format = new ChatFormat(tokenizer);

    @Test
    void rendersTheLlama31Template() {
        String text = ChatFormat.render(List.of(ChatMessage.system("Be brief."), ChatMessage.user(" Hi? "),
                ChatMessage.assistant("Hello.\n")));
        assertThat(text).isEqualTo("<|begin_of_text|>"
                + "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>");
    }

    @Test
    void labelsOnlyTheAssistantContentAndItsEndOfTurn() {
        List<ChatMessage> chat = List.of(ChatMessage.system("S"), ChatMessage.user("Q?"), ChatMessage.assistant("Ok"));
        TokenizedExample e = format.encode(chat);
        assertThat(e.inputIds()).containsExactly(tokenizer.encode(ChatFormat.render(chat)));
        assertThat(tokenizer.decode(e.inputIds())).isEqualTo(ChatFormat.render(chat));

        // the trained tokens are exactly "Ok<|eot_id|>", at the end
        int n = e.length();
        assertThat(e.trainedTokens()).isEqualTo(3);
        assertThat(Arrays.copyOfRange(e.labels(), n - 3, n)).containsExactly('O', 'k', 128009);
        assertThat(Arrays.copyOfRange(e.labels(), 0, n - 3)).containsOnly(Tokenizer.IGNORE_INDEX);
        // the assistant header and its "\n\n" are not trained
        assertThat(e.inputIds()[n - 4]).isEqualTo('\n');
        assertThat(e.labels()[n - 4]).isEqualTo(Tokenizer.IGNORE_INDEX);
    }

    @Test
    void everyAssistantTurnIsTrainedAndNothingElse() {
        List<ChatMessage> chat = List.of(ChatMessage.user("a"), ChatMessage.assistant("b"), ChatMessage.user("c"),
                ChatMessage.assistant("d"));
        TokenizedExample e = format.encode(chat);
        StringBuilder trained = new StringBuilder();
        for (int i = 0; i < e.length(); i++) {
            if (e.labels()[i] != Tokenizer.IGNORE_INDEX) {
                assertThat(e.labels()[i]).isEqualTo(e.inputIds()[i]);
                trained.append(tokenizer.decode(new int[] {e.labels()[i]}));
            }
        }
        assertThat(trained.toString()).isEqualTo("b<|eot_id|>d<|eot_id|>");
        assertThat(e.inputIds()[0]).isEqualTo(128000);
    }

    @Test
    void aConversationWithoutAssistantTrainsNothing() {
        TokenizedExample e = format.encode(List.of(ChatMessage.user("question only")));
        assertThat(e.trainedTokens()).isZero();
        assertThatThrownBy(() -> format.encode(List.of())).hasMessageContaining("at least one message");
    }

    @Test
    void truncationKeepsThePrefix() {
        TokenizedExample e = format.encode(List.of(ChatMessage.user("abc"), ChatMessage.assistant("xyz")));
        TokenizedExample cut = e.truncate(5);
        assertThat(cut.inputIds()).containsExactly(Arrays.copyOf(e.inputIds(), 5));
        assertThat(e.truncate(1000)).isSameAs(e);
    }
}
