package dev.longtune.cli;

import dev.longtune.model.LlamaModel;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * Per-layer progress of forward and backward on stderr, one line redrawn in place ({@code \r}), so that stdout
 * (tables, {@code --json}) stays clean. {@link #auto} shows it only on an interactive console: a redrawn line
 * in a log file or a test's captured stderr is noise.
 */
final class LayerProgress implements LlamaModel.LayerListener {
    private final PrintWriter err;
    private String label = "";
    private int width;

    private LayerProgress(PrintWriter err) { this.err = err; }

    /** Progress on {@code err}, or a listener that does nothing: {@code mode} is on, off or auto. */
    static LlamaModel.LayerListener of(String mode, PrintWriter err) {
        boolean on = switch (mode.toLowerCase(Locale.ROOT)) {
            case "on" -> true;
            case "off" -> false;
            case "auto" -> System.console() != null;
            default -> throw new IllegalArgumentException("--progress must be on, off or auto, got '" + mode + "'");
        };
        return on ? new LayerProgress(err) : (pass, layer, layers) -> { };
    }

    /**
     * A one-line note of set-up work with the seconds since {@code started} ("[  42 s] random initialisation"), on
     * {@code err} when progress is shown: setting up the whole 8B offloaded takes minutes before the first step.
     */
    static void setup(LlamaModel.LayerListener listener, long started, String what) {
        if (listener instanceof LayerProgress p) {
            p.err.printf(Locale.ROOT, "[%4.0f s] %s%n", (System.nanoTime() - started) / 1e9, what);
            p.err.flush();
        }
    }

    /** Sets what the line starts with (e.g. "step 3/10"). */
    static void label(LlamaModel.LayerListener listener, String label) {
        if (listener instanceof LayerProgress p) {
            p.label = label;
        }
    }

    /** Ends the redrawn line, so that what follows starts on a fresh one. */
    static void finish(LlamaModel.LayerListener listener) {
        if (listener instanceof LayerProgress p && p.width > 0) {
            p.err.print("\r" + " ".repeat(p.width) + "\r");
            p.err.flush();
            p.width = 0;
        }
    }

    @Override
    public void layerDone(String pass, int layer, int layers) {
        // backward counts layers down; show how many are done either way
        int done = pass.equals("backward") ? layers - layer : layer + 1;
        String line = String.format(Locale.ROOT, "%s  %-8s layer %d/%d", label, pass, done, layers);
        err.print("\r" + line + " ".repeat(Math.max(0, width - line.length())));
        err.flush();
        width = Math.max(width, line.length());
    }
}
