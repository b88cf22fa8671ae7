package dev.longtune.cli;

import dev.longtune.cuda.Cuda;
import dev.longtune.report.MeasuredSweep;
import dev.longtune.report.StudyReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "study", mixinStandardHelpOptions = true,
        description = "Runs the planner study and writes results/<study>/: CSV, PNG charts, HTML tables, manifest.json; "
                + "on a GPU machine also the engine's measured memory against context.")
public class StudyCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Option(names = "--name", defaultValue = "memory-planner", description = "study name, the folder under --out; default ${DEFAULT-VALUE}")
    String name;

    @Option(names = "--out", defaultValue = "results", description = "results folder; default ${DEFAULT-VALUE}")
    Path out;

    @Option(names = "--measure", defaultValue = "auto",
            description = "also train a 2-layer slice of Llama 3.1 8B on the GPU at 4K-32K tokens and write its measured "
                    + "memory beside the planner's: auto (when a GPU is usable), on, or off; default ${DEFAULT-VALUE}")
    String measure;

    @Override
    public Integer call() throws Exception {
        Path dir = out.resolve(name);
        long start = System.nanoTime();
        boolean gpu = switch (measure.toLowerCase(java.util.Locale.ROOT)) {
            case "auto" -> Cuda.available();
            case "on" -> {
                if (!Cuda.available()) {
                    throw new IllegalArgumentException("--measure on needs a GPU: " + Cuda.whyUnavailable());
                }
                yield true;
            }
            case "off" -> false;
            default -> throw new IllegalArgumentException("--measure " + measure + ": use auto, on or off");
        };
        java.util.List<String> files;
        int work = StudyReport.workUnits() + (gpu ? MeasuredSweep.GPU_CONTEXTS.length : 0);
        // a bar redrawn in place on a terminal; a line per step in a log (the README's commands are often redirected)
        try (dev.longtune.notebook.Progress bar = dev.longtune.notebook.LineProgress.onStderr("study " + name, work)) {
            StudyReport report = new StudyReport(dir, bar::step);
            java.nio.file.Path bench = java.nio.file.Path.of("bench", "results");
            if (java.nio.file.Files.isRegularFile(bench.resolve("offload-8b-sweep-48gib-h200.json"))) {
                report.withBenchResults(bench); // the repository's committed GPU measurements
            }
            if (gpu) {
                report.withMeasuredSweep(MeasuredSweep.onThisGpu(), MeasuredSweep.GPU_CONTEXTS);
            } else {
                report.withoutMeasuredSweep(measure.equalsIgnoreCase("off") ? "--measure off"
                        : "no GPU on this machine (" + Cuda.whyUnavailable() + ")");
            }
            files = report.write("longtune study --name " + name + " --out " + out + " --measure " + measure);
        }
        if (!gpu) {
            out().println("planner only: " + (measure.equalsIgnoreCase("off") ? "--measure off" : "no GPU here, so the engine's "
                    + "memory was not measured (on a GPU machine the study also measures it)"));
        }
        out().printf("wrote %d files to %s in %.1f s%n", files.size(), dir, (System.nanoTime() - start) / 1e9);
        files.forEach(f -> out().println("  " + f));
        return 0;
    }
}
