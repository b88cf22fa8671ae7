package dev.longtune.notebook;

import java.io.PrintStream;
import java.util.Locale;

/**
 * Progress for a log rather than a terminal (output redirected to a file, CI): one line per step with its count and
 * message, and a last line when done, instead of a bar redrawn with carriage returns that a log shows as one line.
 */
public final class LineProgress implements Progress {
    private final String task;
    private final long total;
    private final PrintStream out;
    private final long started = System.nanoTime();
    private long done;

    public LineProgress(String task, long total, PrintStream out) {
        this.task = task;
        this.total = total;
        this.out = out;
    }

    /** A bar redrawn in place on a terminal, lines in a log: what suits stderr here. */
    public static Progress onStderr(String task, long total) {
        return System.console() != null ? new ConsoleProgress(task, total) : new LineProgress(task, total, System.err);
    }

    @Override
    public void step(String message) {
        done++;
        out.printf(Locale.ROOT, "%s %d/%d%s%n", task, done, total, message == null || message.isBlank() ? "" : ": " + message);
        out.flush();
    }

    @Override
    public void close() {
        out.printf(Locale.ROOT, "%s done: %d/%d in %.1f s%n", task, done, total, (System.nanoTime() - started) / 1e9);
        out.flush();
    }
}
