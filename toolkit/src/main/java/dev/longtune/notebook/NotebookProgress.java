package dev.longtune.notebook;

import dev.longtune.report.Html;
import io.github.spencerpark.jupyter.kernel.DisplayStream;
import io.github.spencerpark.jupyter.kernel.display.DisplayData;

import java.util.Locale;
import java.util.UUID;

/**
 * A progress bar in a notebook cell that updates in place: displayed once with a display id, then
 * replaced through update_display_data, at most every 100 ms and always at the end.
 */
final class NotebookProgress implements Progress {
    private static final long MIN_INTERVAL_NANOS = 100_000_000L;
    private final DisplayStream display;
    private final String task, id = "longtune-progress-" + UUID.randomUUID();
    private final long total;
    private final long start = System.nanoTime();
    private long done, lastUpdate;

    NotebookProgress(DisplayStream display, String task, long total) {
        this.display = display;
        this.task = task;
        this.total = Math.max(1, total);
        DisplayData first = view("");
        first.setDisplayId(id);
        display.display(first);
    }

    @Override
    public synchronized void step(String message) {
        done++;
        long now = System.nanoTime();
        if (done >= total || now - lastUpdate >= MIN_INTERVAL_NANOS) {
            lastUpdate = now;
            display.updateDisplay(id, view(message));
        }
    }

    @Override
    public synchronized void close() {
        display.updateDisplay(id, view("done"));
    }

    private DisplayData view(String message) {
        double seconds = (System.nanoTime() - start) / 1e9;
        String text = String.format(Locale.ROOT, "%s %d/%d (%.1f s) %s", task, done, total, seconds, message);
        DisplayData d = new DisplayData(text);
        d.putHTML(String.format(Locale.ROOT, "<div><progress value=\"%d\" max=\"%d\" style=\"width:40%%\"></progress> %s</div>",
                done, total, Html.escape(text)));
        return d;
    }
}
