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
