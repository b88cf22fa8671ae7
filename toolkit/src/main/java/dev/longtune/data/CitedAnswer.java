package dev.longtune.data;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An answer in LongCite's format: statements, each with the document sentences it cites, between plain text.
 *
 * <pre>{@code <statement>The keeper's number is 4721.<cite>[12-12][30-31]</cite></statement>}</pre>
 *
 * <p>{@link #parse} is strict and says where the markup is wrong (training data must be right);
 * {@link #parseLenient} reads what a model wrote, skipping what it cannot read (for scoring).
 */
public record CitedAnswer(List<Statement> statements, String plainText) {

    public static final String STATEMENT_OPEN = "<statement>";
    public static final String STATEMENT_CLOSE = "</statement>";
    public static final String CITE_OPEN = "<cite>";
    public static final String CITE_CLOSE = "</cite>";

    private static final Pattern RANGE = Pattern.compile("\\[\\s*(\\d+)\\s*(?:-\\s*(\\d+)\\s*)?]");

    /** One {@code <statement>}: its text without markup, and its citations in the order written. */
    public record Statement(String text, List<SentenceRange> citations) {
        public Statement {
            citations = List.copyOf(citations);
        }

        public boolean cited() {
            return !citations.isEmpty();
        }
    }

    /** Malformed citation markup; {@link #offset()} is the character where it was found. */
    public static final class FormatException extends IllegalArgumentException {
        private final int offset;

        FormatException(String message, int offset) {
            super(message + " at character " + offset);
            this.offset = offset;
        }

        public int offset() {
            return offset;
        }
    }

    public CitedAnswer {
        statements = List.copyOf(statements);
    }

    /**
     * Reads an answer; text outside {@code <statement>} elements is kept in {@link #plainText()} only.
     *
     * @throws FormatException for an unclosed or nested {@code <statement>} or {@code <cite>}, or a citation
     *                         other than {@code [a-b]} / {@code [a]} with {@code a <= b}
     */
    public static CitedAnswer parse(String answer) {
        return parse(answer, true);
    }

    /** Like {@link #parse}, but unclosed elements run to the end and unreadable citations are skipped. */
    public static CitedAnswer parseLenient(String answer) {
        return parse(answer, false);
    }

    /** All cited ranges of all statements, in order. */
    public List<SentenceRange> citations() {
        List<SentenceRange> all = new ArrayList<>();
        statements.forEach(s -> all.addAll(s.citations()));
        return all;
    }

    private static CitedAnswer parse(String answer, boolean strict) {
        List<Statement> statements = new ArrayList<>();
        StringBuilder plain = new StringBuilder();
        int pos = 0;
        while (pos < answer.length()) {
            int open = answer.indexOf(STATEMENT_OPEN, pos);
            int strayClose = answer.indexOf(STATEMENT_CLOSE, pos);
            if (strict && strayClose >= 0 && (open < 0 || strayClose < open)) {
                throw new FormatException(STATEMENT_CLOSE + " without " + STATEMENT_OPEN, strayClose);
            }
            if (open < 0) {
                plain.append(strict ? answer.substring(pos) : answer.substring(pos).replace(STATEMENT_CLOSE, ""));
                break;
            }
            plain.append(answer, pos, open);
            int bodyStart = open + STATEMENT_OPEN.length();
            int close = answer.indexOf(STATEMENT_CLOSE, bodyStart);
            int nested = answer.indexOf(STATEMENT_OPEN, bodyStart);
            if (close < 0 || (nested >= 0 && nested < close)) {
                if (strict) {
                    throw new FormatException(close < 0 ? "unclosed " + STATEMENT_OPEN
                            : STATEMENT_OPEN + " inside another " + STATEMENT_OPEN, close < 0 ? open : nested);
                }
                close = nested >= 0 ? nested : answer.length();
            }
            Statement s = statement(answer, bodyStart, close, strict);
            statements.add(s);
            plain.append(s.text());
            pos = Math.min(answer.length(), close == answer.length() || answer.startsWith(STATEMENT_OPEN, close)
                    ? close : close + STATEMENT_CLOSE.length());
        }
        return new CitedAnswer(statements, plain.toString());
    }

    private static Statement statement(String answer, int start, int end, boolean strict) {
        int citeOpen = answer.indexOf(CITE_OPEN, start);
        if (citeOpen < 0 || citeOpen >= end) {
            if (strict) {
                int strayClose = answer.indexOf(CITE_CLOSE, start);
                if (strayClose >= 0 && strayClose < end) {
                    throw new FormatException(CITE_CLOSE + " without " + CITE_OPEN, strayClose);
                }
            }
            return new Statement(answer.substring(start, end), List.of());
        }
        int citeStart = citeOpen + CITE_OPEN.length();
        int citeClose = answer.indexOf(CITE_CLOSE, citeStart);
        if (citeClose < 0 || citeClose > end) {
            if (strict) {
                throw new FormatException("unclosed " + CITE_OPEN, citeOpen);
            }
            citeClose = end;
        }
        if (strict) {
            String after = answer.substring(Math.min(end, citeClose + CITE_CLOSE.length()), end);
            if (!after.isBlank()) {
                throw new FormatException("text after " + CITE_CLOSE + " inside a statement: '" + after.strip() + "'",
                        citeClose + CITE_CLOSE.length());
            }
        }
        return new Statement(answer.substring(start, citeOpen), ranges(answer, citeStart, citeClose, strict));
    }

    private static List<SentenceRange> ranges(String answer, int start, int end, boolean strict) {
        List<SentenceRange> ranges = new ArrayList<>();
        Matcher m = RANGE.matcher(answer).region(start, end);
        int pos = start;
        while (m.find()) {
            if (strict && !answer.substring(pos, m.start()).isBlank()) {
                throw new FormatException("unreadable citation '" + answer.substring(pos, m.start()).strip()
                        + "' (expected [first-last])", pos);
            }
            try {
                int first = Integer.parseInt(m.group(1));
                int last = m.group(2) == null ? first : Integer.parseInt(m.group(2));
                if (first > last && strict) {
                    throw new FormatException("citation " + m.group() + " ends before it starts", m.start());
                }
                if (first <= last) {
                    ranges.add(new SentenceRange(first, last));
                }
            } catch (NumberFormatException e) {
                if (strict) {
                    throw new FormatException("citation " + m.group() + " has a number too large", m.start());
                }
            }
            pos = m.end();
        }
        if (strict && !answer.substring(pos, end).isBlank()) {
            throw new FormatException("unreadable citation '" + answer.substring(pos, end).strip()
                    + "' (expected [first-last])", pos);
        }
        return ranges;
    }

    /** Writes statements back in LongCite's format (the inverse of {@link #parse} for statements only). */
    public static String format(List<Statement> statements) {
        StringBuilder out = new StringBuilder();
        for (Statement s : statements) {
            out.append(STATEMENT_OPEN).append(s.text()).append(CITE_OPEN);
            s.citations().forEach(out::append);
            out.append(CITE_CLOSE).append(STATEMENT_CLOSE);
        }
        return out.toString();
    }
}
