package dev.longtune.data;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One LongCite record: a conversation whose user turn holds a document with sentences marked {@code <C{i}>}
 * and a question, and whose assistant turn answers with {@code <statement>…<cite>[a-b]</cite></statement>}.
 *
 * @param source the JSONL file it came from (for error messages)
 * @param line   its 1-based line in that file
 */
public record LongCiteExample(Path source, long line, List<ChatMessage> messages) {

    private static final Pattern SENTENCE_MARKER = Pattern.compile("<C(\\d+)>");

    public LongCiteExample {
        messages = List.copyOf(messages);
    }

    /** The content of the first user turn: the instruction, the document and the question. */
    public String user() {
        return messages.get(index(ChatMessage.Role.USER, false)).content();
    }

    /** The content of the last assistant turn: the cited answer. */
    public String assistant() {
        return messages.get(index(ChatMessage.Role.ASSISTANT, true)).content();
    }

    /**
     * The last assistant turn's statements and citations.
     *
     * @throws DataFileException naming file, line and {@code messages[i].content} when the markup is wrong
     */
    public CitedAnswer citedAnswer() {
        int i = index(ChatMessage.Role.ASSISTANT, true);
        try {
            return CitedAnswer.parse(messages.get(i).content());
        } catch (CitedAnswer.FormatException e) {
            throw new DataFileException(source, line, "messages[" + i + "].content", e.getMessage(), e);
        }
    }

    /** Number of sentence markers {@code <C{i}>} in the user turn (one past the highest index). */
    public int sentenceCount() {
        Matcher m = SENTENCE_MARKER.matcher(user());
        int max = -1;
        while (m.find()) {
            max = Math.max(max, Integer.parseInt(m.group(1)));
        }
        return max + 1;
    }

    /** Token ids and labels in the Llama 3.1 chat format; loss on the assistant's tokens only. */
    public TokenizedExample tokenize(ChatFormat format) {
        return format.encode(messages);
    }

    private int index(ChatMessage.Role role, boolean last) {
        int found = -1;
        for (int i = 0; i < messages.size(); i++) {
            if (messages.get(i).role() == role) {
                found = i;
                if (!last) {
                    break;
                }
            }
        }
        if (found < 0) {
            throw new DataFileException(source, line, "messages", "no " + role.wireName() + " message");
        }
        return found;
    }
}
