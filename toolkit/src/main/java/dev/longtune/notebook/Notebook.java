package dev.longtune.notebook;

import io.github.spencerpark.jupyter.kernel.BaseKernel;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.internal.chartpart.IChart;
import tech.tablesaw.api.Table;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * longtune inside a Jupyter kernel: renderers, displays, progress bars, and where a notebook saves its
 * figures. Our kernel calls {@link #attach} at start; in a stock IJava kernel one call does the same:
 * {@code dev.longtune.notebook.Notebook.attachToRunningKernel();}
 */
public final class Notebook {
    /** Environment variable naming the folder where notebooks save their CSV and PNG files. */
    public static final String OUTPUT_ENV = "LONGTUNE_OUTPUT_DIR";

    private static volatile BaseKernel kernel;

    private Notebook() {}

    /** Registers longtune's renderers with this kernel and routes displays and progress through it. */
    public static void attach(BaseKernel k) {
        Renderers.registerAll(k.getRenderer());
        kernel = k;
    }

    /**
     * Finds the running IJava kernel ({@code io.github.spencerpark.ijava.IJava.getKernelInstance()}) and
     * attaches to it.
     */
    public static void attachToRunningKernel() {
        try {
            Class<?> ijava = Class.forName("io.github.spencerpark.ijava.IJava");
            Method get = ijava.getMethod("getKernelInstance");
            Object k = get.invoke(null);
            if (k instanceof BaseKernel base) {
                attach(base);
                return;
            }
        } catch (ReflectiveOperationException | LinkageError e) {
            // fall through to the error below
        }
        throw new IllegalStateException("no basekernel-based Java kernel is running here: use the 'Java (longtune)' "
                + "kernel, or IJava with the toolkit jar on IJAVA_CLASSPATH");
    }

    public static boolean isAttached() { return kernel != null; }

    static BaseKernel kernel() { return kernel; }

    /** Shows a value in the cell's output, rendered as the kernel would render a cell's value. */
    public static void display(Object value) {
        BaseKernel k = kernel;
        if (k == null) {
            System.out.println(value);
        } else {
            k.display(k.getRenderer().render(value));
        }
    }

    /** A progress bar: in place in a notebook, on the console otherwise. */
    public static Progress progress(String task, long total) {
        BaseKernel k = kernel;
        return k != null && k.getIO().display.isAttached() ? new NotebookProgress(k.getIO().display, task, total)
                : LineProgress.onStderr(task, total);
    }

    /** Where a notebook saves its files: $LONGTUNE_OUTPUT_DIR, else results/notebooks/&lt;name&gt; in the project. */
    public static Path outputDir(String notebookName) {
        String env = System.getenv(OUTPUT_ENV);
        // relative paths are the project's: a kernel runs in the notebook's folder, not where it was started
        Path dir = projectRoot().resolve(env != null && !env.isBlank() ? env : "results/notebooks/" + notebookName);
        try {
            return Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The nearest folder at or above the working directory that holds the {@code longtune} launcher. */
    static Path projectRoot() {
        Path p = Path.of("").toAbsolutePath();
        for (Path q = p; q != null; q = q.getParent()) {
            if (Files.isRegularFile(q.resolve("longtune")) && Files.isDirectory(q.resolve("toolkit"))) {
                return q;
            }
        }
        return p;
    }

    /**
     * The table to show, with memory in MiB: every long column whose name ends in " B" (bytes, as saved to CSV)
     * becomes a column named "… MiB" with its values in MiB, to two decimals; other columns are kept as they are.
     * The table itself is not changed (save it to keep the exact bytes).
     */
    public static Table inMiB(Table bytes) {
        Table shown = Table.create(bytes.name());
        for (var column : bytes.columns()) {
            if (column instanceof tech.tablesaw.api.LongColumn longs && column.name().endsWith(" B")) {
                var mib = tech.tablesaw.api.DoubleColumn.create(column.name().substring(0, column.name().length() - 2) + " MiB");
                for (int i = 0; i < longs.size(); i++) {
                    if (longs.isMissing(i)) {
                        mib.appendMissing();
                    } else {
                        mib.append(Math.round(longs.getLong(i) / 1048576.0 * 100) / 100.0);
                    }
                }
                shown.addColumns(mib);
            } else {
                shown.addColumns(column.copy());
            }
        }
        return shown;
    }

    /** Saves a table as CSV or a chart as PNG into {@code dir}; returns the file written. */
    public static Path save(Path dir, String name, Object value) {
        try {
            Files.createDirectories(dir);
            if (value instanceof Table t) {
                Path f = dir.resolve(name.endsWith(".csv") ? name : name + ".csv");
                t.write().csv(f.toFile());
                return f;
            }
            if (value instanceof IChart chart) {
                Path f = dir.resolve(name.endsWith(".png") ? name : name + ".png");
                BitmapEncoder.saveBitmap(chart, f.toString(), BitmapEncoder.BitmapFormat.PNG);
                return f;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot save " + name + " in " + dir + ": " + e.getMessage(), e);
        }
        throw new IllegalArgumentException("cannot save a " + value.getClass().getSimpleName() + " as '" + name
                + "': save a Table (CSV) or a chart (PNG)");
    }
}
