package dev.longtune.data;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Splits English prose into sentences: paragraphs at blank lines, sentences at {@code . ! ?} (optionally
 * followed by a closing quote or bracket) before a capital, digit or opening quote. Line breaks inside a
 * paragraph become spaces. Fragments shorter than {@value #MIN_CHARS} characters (section numbers such as
 * {@code "1."}) join the sentence after them.
 */
public final class Sentences {

    static final int MIN_CHARS = 12;

    private static final Pattern PARAGRAPH = Pattern.compile("\\n\\s*\\n");
    private static final Pattern SPACE = Pattern.compile("\\s+");
    private static final Pattern BOUNDARY = Pattern.compile("(?<=[.!?][\"')\\]]?)\\s+(?=[\"'(\\[]?[A-Z0-9])");

    /** A sentence and the whitespace that follows it in the text: a space, or a blank line after a paragraph. */
    public record Sentence(String text, String separator) {
    }

    private Sentences() {
    }

    public static List<Sentence> split(String text) {
        List<Sentence> out = new ArrayList<>();
        for (String paragraph : PARAGRAPH.split(text.replace("\r\n", "\n"))) {
            String flat = SPACE.matcher(paragraph).replaceAll(" ").strip();
            if (flat.isEmpty()) {
                continue;
            }
            List<String> parts = new ArrayList<>();
            String pending = "";
            for (String part : BOUNDARY.split(flat)) {
                String joined = pending.isEmpty() ? part : pending + " " + part;
                if (joined.length() < MIN_CHARS) {
                    pending = joined;
                } else {
                    parts.add(joined);
                    pending = "";
                }
            }
            if (!pending.isEmpty()) {
                if (parts.isEmpty()) {
                    parts.add(pending);
                } else {
                    parts.set(parts.size() - 1, parts.get(parts.size() - 1) + " " + pending);
                }
            }
            for (int i = 0; i < parts.size(); i++) {
                out.add(new Sentence(parts.get(i), i == parts.size() - 1 ? "\n\n" : " "));
            }
        }
        return out;
    }
}
