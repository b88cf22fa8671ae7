package dev.longtune.run;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A run's pictures, drawn from its log.jsonl when it ends ({@link Run}'s charts): {@code loss.png},
 * {@code throughput.png} and {@code memory.png} (peak bytes by category on the device and the host, by step), each
 * also as SVG.
 */
public final class RunPlots {
    private RunPlots() {}

    public static void write(RunFolder folder) throws IOException {
        Run run = Run.open(folder.dir());
        if (run.empty()) {
            return;
        }
        saveChart(run.lossChart(), folder.dir().resolve("loss"));
        saveChart(run.throughputChart(), folder.dir().resolve("throughput"));
        saveChart(run.memoryChart(), folder.dir().resolve("memory"));
    }

    /** {@code chart} as {@code path}.png and {@code path}.svg. */
    public static void saveChart(XYChart chart, Path path) throws IOException {
        BitmapEncoder.saveBitmap(chart, path + ".png", BitmapEncoder.BitmapFormat.PNG);
        VectorGraphicsEncoder.saveVectorGraphic(chart, path + ".svg", VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
    }
}
