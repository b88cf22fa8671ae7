package dev.longtune.kernel;

import java.util.UUID;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;

/**
 * IJava-style display functions for cells (statically imported by the startup script): show a value now,
 * from anywhere in a cell, and update it in place later.
 */
public final class Display {
    private Display() {}

    /** Shows {@code value} as the kernel renders cell values; returns its display id. */
    public static String display(Object value) {
        return show(value);
    }

    /**
     * Shows {@code value} as the given MIME types only (e.g. {@code display(chart, "image/svg+xml")},
     * {@code display(html, "text/html")}: a String is taken as that content); returns its display id.
     */
    public static String display(Object value, String... mimeTypes) {
        return show(render(value, mimeTypes));
    }

    /** {@code value} rendered as the kernel renders cell values, or as the given MIME types: show it later. */
    public static DisplayData render(Object value, String... mimeTypes) {
        LongtuneKernel kernel = LongtuneKernel.current();
        if (kernel == null) {
            throw new IllegalStateException("no longtune kernel is running");
        }
        if (mimeTypes.length == 0) {
            return render(kernel, value);
        }
        if (value instanceof CharSequence text) { // content already in that type
            DisplayData d = new DisplayData();
            for (String mime : mimeTypes) {
                d.putData(mime, text.toString());
            }
            return d;
        }
        return kernel.getRenderer().renderAs(value, mimeTypes);
    }

    private static String show(Object value) {
        LongtuneKernel kernel = LongtuneKernel.current();
        DisplayData data = render(kernel, value);
        String id = data.hasDisplayId() ? data.getDisplayId() : UUID.randomUUID().toString();
        data.setDisplayId(id);
        kernel.display(data);
        return id;
    }

    /** Replaces what {@link #display(Object)} showed under {@code id}. */
    public static void updateDisplay(String id, Object value) {
        LongtuneKernel kernel = LongtuneKernel.current();
        kernel.getIO().display.updateDisplay(id, render(kernel, value));
    }

    private static DisplayData render(LongtuneKernel kernel, Object value) {
        if (kernel == null) {
            throw new IllegalStateException("no longtune kernel is running");
        }
        // Copy: the display id must not be set on the caller's own DisplayData.
        return value instanceof DisplayData d ? new DisplayData(d) : kernel.getRenderer().render(value);
    }
}
