package dev.longtune.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The Llama 3.1 chat format, as text and as token ids with labels for supervised finetuning.
 *
 * <pre>
 * &lt;|begin_of_text|&gt;&lt;|start_header_id|&gt;system&lt;|end_header_id|&gt;\n\n{system}&lt;|eot_id|&gt;
 * &lt;|start_header_id|&gt;user&lt;|end_header_id|&gt;\n\n{user}&lt;|eot_id|&gt;
 * &lt;|start_header_id|&gt;assistant&lt;|end_header_id|&gt;\n\n{assistant}&lt;|eot_id|&gt;
 * </pre>
 * (without the line breaks). Content is trimmed, as the chat template in Llama 3's
 * {@code tokenizer_config.json} does ({@code message['content'] | trim}).
 *
 * <p>Labels: the loss is taken on each assistant turn's content and the {@code <|eot_id|>} that ends it,
 * so the model learns to stop; every other token (BOS, headers, system and user turns) is -100. All
 * assistant turns are trained, not only the last.
 *
 * <p>Token ids are built piece by piece (special tokens by id, {@code "\n\n"} and content encoded
 * separately). That equals encoding the whole rendered text: special tokens split the text before the
 * pre-tokenizer runs, and the regex {@code \s*[\r\n]+} takes the {@code "\n\n"} alone when the content
 * after it starts with a non-space, which trimming guarantees.
 */
public final class ChatFormat {

    private static final String HEADER_END = "\n\n";

    private final Tokenizer tokenizer;
    private final SpecialTokens special;
    private final int[] headerEnd;

    public ChatFormat(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
        this.special = tokenizer.specialTokens();
        this.headerEnd = tokenizer.encode(HEADER_END);
    }

    /** The conversation as the text the model reads. */
    public static String render(List<ChatMessage> messages) {
        StringBuilder text = new StringBuilder(SpecialTokens.BEGIN_OF_TEXT);
        for (ChatMessage m : messages) {
            text.append(SpecialTokens.START_HEADER).append(m.role().wireName()).append(SpecialTokens.END_HEADER)
                    .append(HEADER_END).append(m.content().strip()).append(SpecialTokens.END_OF_TURN);
        }
        return text.toString();
    }

    /** Token ids and labels; see the class comment for which tokens are trained. */
    public TokenizedExample encode(List<ChatMessage> messages) {
        if (messages.isEmpty()) {
            throw new IllegalArgumentException("a conversation needs at least one message");
        }
        IntList ids = new IntList();
        IntList labels = new IntList();
        ids.add(special.beginOfText());
        labels.add(Tokenizer.IGNORE_INDEX);
        for (ChatMessage m : messages) {
            boolean trained = m.role() == ChatMessage.Role.ASSISTANT;
            List<int[]> header = new ArrayList<>();
            header.add(new int[] {special.startHeader()});
            header.add(tokenizer.encode(m.role().wireName()));
            header.add(new int[] {special.endHeader()});
            header.add(headerEnd);
            for (int[] part : header) {
                ids.addAll(part);
                labels.addRepeated(Tokenizer.IGNORE_INDEX, part.length);
            }
            int[] content = tokenizer.encode(m.content().strip());
            ids.addAll(content);
            ids.add(special.endOfTurn());
            if (trained) {
                labels.addAll(content);
                labels.add(special.endOfTurn());
            } else {
                labels.addRepeated(Tokenizer.IGNORE_INDEX, content.length + 1);
            }
        }
        return new TokenizedExample(ids.toArray(), labels.toArray());
    }

    /** A growable int array, so long documents are not boxed. */
    static final class IntList {
        private int[] values = new int[256];
        private int size;

        void add(int v) {
            if (size == values.length) {
                values = Arrays.copyOf(values, values.length * 2);
            }
            values[size++] = v;
        }

        void addAll(int[] vs) {
            ensure(size + vs.length);
            System.arraycopy(vs, 0, values, size, vs.length);
            size += vs.length;
        }

        void addRepeated(int v, int count) {
            ensure(size + count);
            Arrays.fill(values, size, size + count, v);
            size += count;
        }

        private void ensure(int capacity) {
            if (capacity > values.length) {
                values = Arrays.copyOf(values, Math.max(capacity, values.length * 2));
            }
        }

        int size() {
            return size;
        }

        int[] toArray() {
            return Arrays.copyOf(values, size);
        }
    }
}
