package dev.longtune.kernel;

import java.util.List;

/** Shows one position of a cell: "In[3] line 2:", the source line, and carets under the span. */
final class SourcePointer {
    private SourcePointer() {}

    /**
     * @param position where the problem is (offset in {@code code})
     * @param start    start of the span to underline
     * @param end      end of the span (exclusive)
     */
    static List<String> lines(String code, String cellName, int position, int start, int end) {
        int pos = clamp(position, code.length());
        if (pos > 0 && pos == code.length() && code.charAt(pos - 1) == '\n') {
            pos--; // "end of file": point at the end of the last line, not at an empty one after it
        }
        int lineStart = code.lastIndexOf('\n', pos - 1) + 1;
        int lineEnd = code.indexOf('\n', pos);
        if (lineEnd < 0) {
            lineEnd = code.length();
        }
        int from = Math.max(lineStart, Math.min(clamp(start, code.length()), pos));
        int to = Math.min(lineEnd, Math.max(clamp(end, code.length()), pos + 1));
        String source = code.substring(lineStart, lineEnd);
        StringBuilder caret = new StringBuilder("    ");
        for (int i = lineStart; i < from; i++) {
            caret.append(code.charAt(i) == '\t' ? '\t' : ' ');
        }
        caret.append("^".repeat(Math.max(1, to - from)));
        int lineNumber = (int) code.substring(0, lineStart).chars().filter(c -> c == '\n').count() + 1;
        return List.of(cellName + " line " + lineNumber + ":", "    " + source, caret.toString());
    }

    private static int clamp(int value, int length) {
        return Math.max(0, Math.min(value, length));
    }
}
