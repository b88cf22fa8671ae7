package dev.longtune.notebook;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarConsumer;
import me.tongfei.progressbar.ProgressBarStyle;

/** A progress bar on the console (stderr), redrawn in place. */
final class ConsoleProgress implements Progress {
    private final ProgressBar bar;

    ConsoleProgress(String task, long total) { this(task, total, null); }

    /** Draws through {@code consumer} instead of the console, for tests; null means the console. */
    ConsoleProgress(String task, long total, ProgressBarConsumer consumer) {
        ProgressBarBuilder builder = new ProgressBarBuilder().setTaskName(task).setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(200).continuousUpdate();
        bar = (consumer == null ? builder : builder.setConsumer(consumer)).build();
    }

    @Override
    public void step(String message) {
        bar.setExtraMessage(message);
        bar.step();
    }

    @Override
    public void close() { bar.close(); }
}
