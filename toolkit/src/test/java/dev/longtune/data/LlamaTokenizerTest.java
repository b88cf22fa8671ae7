package dev.longtune.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The real Llama 3.1 tokenizer (skipped when it cannot be had); ids as Hugging Face transformers gives them. */
class LlamaTokenizerTest {

    @Test
    void knownIds() {
        LlamaTokenizer t = RealTokenizer.llama31OrSkip();
        assertThat(t.encode("Hello world")).containsExactly(9906, 1917);
        assertThat(t.encode(" Hello world")).containsExactly(22691, 1917);
        assertThat(t.encode("\n\n")).containsExactly(271);
        assertThat(t.encode("user")).containsExactly(882);
        assertThat(t.encode("assistant")).containsExactly(78191);
        // digits go in groups of at most three
        assertThat(t.encode("4721")).containsExactly(21757, 16);
        assertThat(t.encode("it's")).containsExactly(275, 596);
    }

    @Test
    void specialTokensInTextBecomeTheirIds() {
        LlamaTokenizer t = RealTokenizer.llama31OrSkip();
        assertThat(t.encode("<|begin_of_text|>Hi<|eot_id|>")).containsExactly(128000, 13347, 128009);
        assertThat(t.encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"))
                .containsExactly(128006, 882, 128007, 271, 13347, 128009);
        assertThat(t.specialTokens()).isEqualTo(SpecialTokens.LLAMA_3);
        assertThat(t.decode(new int[] {128000, 13347, 128009})).isEqualTo("<|begin_of_text|>Hi<|eot_id|>");
    }

    @ParameterizedTest
    @ValueSource(strings = {"Hello world", "  leading and trailing  ", "naïve café 日本語 🙂", "tabs\tand\r\nCRLF\n\n\n",
            "<C12>The cat sat.<C13> It's 3.14159!", ""})
    void roundTrip(String text) {
        LlamaTokenizer t = RealTokenizer.llama31OrSkip();
        assertThat(t.decode(t.encode(text))).isEqualTo(text);
    }

    @Test
    void roundTripOfALongLicenceText() throws IOException {
        LlamaTokenizer t = RealTokenizer.llama31OrSkip();
        Path gpl = Path.of("/usr/share/common-licenses/GPL-3");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(gpl), "no " + gpl);
        String text = Files.readString(gpl);
        int[] ids = t.encode(text);
        assertThat(t.decode(ids)).isEqualTo(text);
        // English prose: about 4.7 characters per token
        assertThat((double) text.length() / ids.length).isBetween(4.0, 5.5);
        assertThat(t.count(text)).isEqualTo(ids.length);
    }

    /** ChatFormat builds ids piece by piece; that must equal tokenizing the rendered text in one go. */
    @Test
    void chatFormatMatchesTokenizingTheRenderedText() {
        LlamaTokenizer t = RealTokenizer.llama31OrSkip();
        List<ChatMessage> chat = List.of(
                ChatMessage.system("You answer with citations."),
                ChatMessage.user("[Document Start]\n<C0>The keeper lit the lamp. <C1>The secret number of the"
                        + " lighthouse keeper is 4721.\n[Document End]\n\nWhat is the secret number?  "),
                ChatMessage.assistant("  <statement>It is 4721.<cite>[1-1]</cite></statement>\n"),
                ChatMessage.user("1234 and why?"),
                ChatMessage.assistant("\"Because\" the document says so."));
        TokenizedExample e = new ChatFormat(t).encode(chat);
        assertThat(e.inputIds()).containsExactly(t.encode(ChatFormat.render(chat)));
        assertThat(t.decode(e.inputIds())).isEqualTo(ChatFormat.render(chat));
    }

    @Test
    void missingFileSaysHowToFetchIt(@TempDir Path dir) {
        assertThatThrownBy(() -> LlamaTokenizer.load(dir.resolve("tokenizer.json")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(dir.resolve("tokenizer.json").toString())
                .hasMessageContaining("fetch-tokenizer.sh");
    }

    @Test
    void aTokenizerWithOtherSpecialTokensIsRefused(@TempDir Path dir) throws IOException {
        // a minimal byte-level BPE whose vocabulary lacks the Llama 3 special tokens
        Path json = dir.resolve("tokenizer.json");
        Files.writeString(json, """
                {"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
                 "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
                 "post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
                 "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,
                          "end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,
                          "vocab":{"a":0,"b":1},"merges":[]}}
                """);
        assertThatThrownBy(() -> LlamaTokenizer.load(json))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is not a Llama 3 tokenizer");
    }
}
