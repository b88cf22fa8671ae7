package dev.longtune.cli;

import dev.longtune.report.StudyReport;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "study", mixinStandardHelpOptions = true,
        description = "Runs the planner study and writes results/<study>/: CSV, PNG charts, HTML tables, manifest.json.")
public class StudyCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Option(names = "--name", defaultValue = "memory-planner", description = "study name, the folder under --out; default ${DEFAULT-VALUE}")
    String name;

    @Option(names = "--out", defaultValue = "results", description = "results folder; default ${DEFAULT-VALUE}")
    Path out;

    @Override
    public Integer call() throws Exception {
        Path dir = out.resolve(name);
        long start = System.nanoTime();
        java.util.List<String> files;
        try (ProgressBar bar = new ProgressBarBuilder().setTaskName("study " + name).setInitialMax(StudyReport.workUnits())
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(200).continuousUpdate().build()) {
            files = new StudyReport(dir, step -> {
                bar.setExtraMessage(step);
                bar.step();
            }).write("longtune study --name " + name + " --out " + out);
        }
        out().printf("wrote %d files to %s in %.1f s%n", files.size(), dir, (System.nanoTime() - start) / 1e9);
        files.forEach(f -> out().println("  " + f));
        return 0;
    }
}
