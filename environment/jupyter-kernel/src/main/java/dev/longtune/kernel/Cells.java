package dev.longtune.kernel;

/**
 * Running code from a cell's own code (statically imported by the startup script), as IJava's {@code eval} does:
 * build a snippet as a string and run it in the session.
 */
public final class Cells {
    private Cells() {}

    /**
     * Runs {@code code} (Java snippets, no magics) in the kernel's session from inside the running cell and returns
     * the value of its last expression (null when it ends with a statement). Its declarations stay for later
     * cells; a compile error or what the code throws is thrown here; an interrupt of the cell stops it too.
     */
    public static Object eval(String code) throws Exception {
        LongtuneKernel kernel = LongtuneKernel.current();
        if (kernel == null) {
            throw new IllegalStateException("eval(String) needs a running longtune kernel");
        }
        return kernel.evaluator().evalNested(code);
    }

    /** {@code %time CODE}: runs the code as {@link #eval} does and prints its wall time; returns its value. */
    public static Object time(String code) throws Exception {
        long started = System.nanoTime();
        try {
            return eval(code);
        } finally {
            System.out.println("Wall time: " + LongtuneKernel.seconds((System.nanoTime() - started) / 1e9));
        }
    }

    /** A line magic used as a value ({@code var jars = %jars lib/*.jar;}): runs it now and returns its result. */
    public static Object lineMagic(String name, String args) throws Exception {
        LongtuneKernel kernel = LongtuneKernel.current();
        if (kernel == null) {
            throw new IllegalStateException("%" + name + " needs a running longtune kernel");
        }
        return kernel.applyLineMagic(name, args);
    }
}
