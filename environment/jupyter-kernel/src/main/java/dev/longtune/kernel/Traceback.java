package dev.longtune.kernel;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The lines that show a runtime exception from a cell: the user's exception and its causes, each with the
 * stack frames down to the user's code. JShell's EvalException copy carries frames already translated to
 * snippets ("#12", line within the snippet); they are shown as cell and line ("In[3] line 4").
 */
final class Traceback {
    /** Where a snippet came from: the cell's name and the cell line its source starts on. */
    record Origin(String cell, int firstLine) {}

    private static final int MAX_FRAMES = 40;

    private Traceback() {}

    /**
     * @param thrown     what the user's code threw (its toString heads each section)
     * @param translated JShell's copy of it, with frames translated to snippets (may be shorter or null)
     */
    static List<String> lines(Throwable thrown, Throwable translated, Map<String, Origin> origins) {
        List<String> lines = new ArrayList<>();
        Throwable t = thrown;
        Throwable frames = translated;
        String heading = "";
        for (int depth = 0; t != null && depth < 10; depth++) {
            lines.add(heading + t);
            StackTraceElement[] elements = (frames != null ? frames : t).getStackTrace();
            int shown = Math.min(elements.length, MAX_FRAMES);
            for (int i = 0; i < shown; i++) {
                lines.add("    at " + frame(elements[i], origins));
            }
            if (elements.length > shown) {
                lines.add("    ... " + (elements.length - shown) + " more");
            }
            heading = "Caused by: ";
            t = t.getCause() == t ? null : t.getCause();
            frames = frames == null ? null : frames.getCause();
        }
        return lines;
    }

    static String frame(StackTraceElement e, Map<String, Origin> origins) {
        String file = e.getFileName();
        if (file == null || !file.startsWith("#")) {
            return e.toString();
        }
        Origin origin = origins.get(file.substring(1));
        String where = origin == null
                ? "snippet " + file + " line " + e.getLineNumber()
                : origin.cell() + " line " + (origin.firstLine() + e.getLineNumber() - 1);
        String name = e.getClassName().isEmpty() ? e.getMethodName()
                : e.getMethodName().isEmpty() ? e.getClassName() : e.getClassName() + "." + e.getMethodName();
        return name.isEmpty() ? where : name + " (" + where + ")";
    }
}
