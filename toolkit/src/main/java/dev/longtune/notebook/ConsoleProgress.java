package dev.longtune.notebook;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** A progress bar on the console (stderr), redrawn in place. */
final class ConsoleProgress implements Progress {
    private final ProgressBar bar;

    ConsoleProgress(String task, long total) {
        bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(200).continuousUpdate().build();
    }

    @Override
    public void step(String message) {
        bar.setExtraMessage(message);
        bar.step();
    }

    @Override
    public void close() { bar.close(); }
}
