package dev.longtune.kernel;

/**
 * How a busy cell stops on every JDK: Thread.stop is gone after JDK 19, so the kernel puts a check of the cell
 * thread's interrupt status at the start of every loop body of the cell's source ({@link #instrument}); the
 * interrupt button interrupts the thread, and the next iteration of whatever loop runs ends the cell.
 */
public final class Interrupts {
    /** Thrown by {@link #check} when the cell's thread was interrupted; the kernel reports an interrupted cell. */
    public static final class Stop extends RuntimeException {
        Stop() {
            super("the cell was interrupted", null, false, false);
        }
    }

    static final String CHECK = "dev.longtune.kernel.Interrupts.check();";

    private Interrupts() {}

    /** Called at the start of every loop body of a cell. */
    public static void check() {
        if (Thread.currentThread().isInterrupted()) {
            throw new Stop();
        }
    }

    /**
     * The source with {@link #CHECK} after the opening brace of every {@code for}, {@code while} and {@code do} body
     * (a body that is a single statement gets braces); strings, text blocks, characters and comments are left alone.
     * Nothing is inserted across lines, so line numbers stay those of the cell.
     */
    static String instrument(String source) {
        StringBuilder out = new StringBuilder(source.length() + 64);
        int n = source.length(), i = 0;
        while (i < n) {
            char c = source.charAt(i);
            int skip = skipLiteralOrComment(source, i);
            if (skip > i) {
                out.append(source, i, skip);
                i = skip;
                continue;
            }
            if (Character.isJavaIdentifierStart(c)) {
                int end = i;
                while (end < n && Character.isJavaIdentifierPart(source.charAt(end))) {
                    end++;
                }
                String word = source.substring(i, end);
                boolean keyword = (word.equals("for") || word.equals("while") || word.equals("do"))
                        && (i == 0 || source.charAt(i - 1) != '.');
                out.append(word);
                i = end;
                if (!keyword) {
                    continue;
                }
                int bodyAt = i;
                if (!word.equals("do")) {
                    int open = skipSpace(source, i);
                    if (open >= n || source.charAt(open) != '(') {
                        continue;
                    }
                    int close = matching(source, open);
                    if (close < 0) {
                        continue;
                    }
                    out.append(source, i, close + 1);
                    i = close + 1;
                    bodyAt = i;
                }
                int body = skipSpace(source, bodyAt);
                if (body < n && source.charAt(body) == '{') {
                    out.append(source, i, body + 1).append(' ').append(CHECK);
                    i = body + 1;
                } else if (body < n && source.charAt(body) == ';' && word.equals("while")) {
                    // the end of a do-while, or an empty loop: nothing to run each time
                } else if (body < n) {
                    int end2 = statementEnd(source, body);
                    if (end2 > 0) {
                        out.append(source, i, body).append("{ ").append(CHECK).append(' ')
                                .append(source, body, end2 + 1).append(" }");
                        i = end2 + 1;
                    }
                }
                continue;
            }
            out.append(c);
            i++;
        }
        return out.toString();
    }

    /** Past a string, text block, char literal or comment starting at i; i itself when none starts there. */
    private static int skipLiteralOrComment(String s, int i) {
        int n = s.length();
        if (s.startsWith("//", i)) {
            int e = s.indexOf('\n', i);
            return e < 0 ? n : e;
        }
        if (s.startsWith("/*", i)) {
            int e = s.indexOf("*/", i + 2);
            return e < 0 ? n : e + 2;
        }
        if (s.startsWith("\"\"\"", i)) {
            int e = s.indexOf("\"\"\"", i + 3);
            while (e > 0 && s.charAt(e - 1) == '\\') {
                e = s.indexOf("\"\"\"", e + 1);
            }
            return e < 0 ? n : e + 3;
        }
        char c = s.charAt(i);
        if (c == '"' || c == '\'') {
            int j = i + 1;
            while (j < n && s.charAt(j) != c && s.charAt(j) != '\n') {
                j += s.charAt(j) == '\\' ? 2 : 1;
            }
            return Math.min(n, j + 1);
        }
        return i;
    }

    private static int skipSpace(String s, int i) {
        while (i < s.length()) {
            int skip = s.startsWith("//", i) || s.startsWith("/*", i) ? skipLiteralOrComment(s, i) : i;
            if (skip > i) {
                i = skip;
            } else if (Character.isWhitespace(s.charAt(i))) {
                i++;
            } else {
                break;
            }
        }
        return i;
    }

    /** The index of the parenthesis closing the one at {@code open}, or -1. */
    private static int matching(String s, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            int skip = skipLiteralOrComment(s, i);
            if (skip > i) {
                i = skip - 1;
                continue;
            }
            char c = s.charAt(i);
            if (c == '(') {
                depth++;
            } else if (c == ')' && --depth == 0) {
                return i;
            }
        }
        return -1;
    }

    /**
     * The ';' ending a simple statement starting at {@code from} (at bracket depth 0, on its line), or -1 where the
     * statement is not simple (a nested block or control statement: left as it is).
     */
    private static int statementEnd(String s, int from) {
        int depth = 0;
        for (int i = from; i < s.length(); i++) {
            int skip = skipLiteralOrComment(s, i);
            if (skip > i) {
                i = skip - 1;
                continue;
            }
            char c = s.charAt(i);
            if (c == '\n' || c == '{' && depth == 0) {
                return -1;
            }
            if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ';' && depth == 0) {
                String head = s.substring(from, i).strip();
                return head.matches("(if|for|while|do|switch|try)\\b.*") ? -1 : i;
            }
        }
        return -1;
    }
}
