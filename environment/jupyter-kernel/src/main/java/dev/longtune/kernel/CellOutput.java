package dev.longtune.kernel;

import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;

import io.github.spencerpark.jupyter.channels.JupyterOutputStream;
import io.github.spencerpark.jupyter.channels.ShellReplyEnvironment;
import io.github.spencerpark.jupyter.kernel.JupyterIO;

/**
 * Output of threads a cell started goes to that cell, also after it ended: each cell's thread (and every thread it
 * starts, through an inheritable thread-local) carries the request it belongs to, and {@code System.out}/{@code err}
 * route a write to it, while the current cell's own writes and the kernel's go where the basekernel sends them.
 * Without a front end (tests in one JVM) nothing changes.
 */
final class CellOutput {
    /** The request of the cell this thread belongs to; inherited by the threads it starts. */
    private static final InheritableThreadLocal<ShellReplyEnvironment> CELL = new InheritableThreadLocal<>();

    private CellOutput() {}

    /**
     * Once, before the first request (KernelMain): {@code System.out} and {@code err} route a thread's writes to its
     * cell. The basekernel swaps in its own streams while a cell runs and puts these back afterwards, so a thread a
     * finished cell started still reaches that cell.
     */
    static synchronized void install() {
        if (!(System.out instanceof Routed)) {
            System.setOut(new Routed(new Router(System.out, null, false)));
            System.setErr(new Routed(new Router(System.err, null, true)));
        }
    }

    private static final class Routed extends PrintStream {
        Routed(Router r) {
            super(r, true, StandardCharsets.UTF_8);
        }
    }

    /**
     * Marks the calling thread (which creates the cell's threads) as running the cell of the current request, and
     * puts routing streams in front of what {@code System.out} and {@code err} are now; undo with {@link #end}.
     */
    static Runnable begin(JupyterIO io) {
        ShellReplyEnvironment env = currentRequest(io);
        if (env == null) {
            return () -> {};
        }
        CELL.set(env);
        PrintStream out = System.out, err = System.err;
        System.setOut(new PrintStream(new Router(out, env, false), true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(new Router(err, env, true), true, StandardCharsets.UTF_8));
        return () -> {
            System.out.flush();
            System.err.flush();
            System.setOut(out);
            System.setErr(err);
            CELL.remove();
        };
    }

    /**
     * Writes of a thread from another cell (or, with {@code current} null, from any cell) go to that cell; everything
     * else to {@code fallback}.
     */
    private static final class Router extends OutputStream {
        private final PrintStream fallback;
        private final ShellReplyEnvironment current;
        private final boolean stderr;

        Router(PrintStream fallback, ShellReplyEnvironment current, boolean stderr) {
            this.fallback = fallback;
            this.current = current;
            this.stderr = stderr;
        }

        @Override
        public void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) {
            ShellReplyEnvironment owner = CELL.get();
            if (owner == null || owner == current) {
                fallback.write(b, off, len);
                return;
            }
            String text = new String(b, off, len, StandardCharsets.UTF_8);
            try {
                if (stderr) {
                    owner.writeToStdErr(text);
                } else {
                    owner.writeToStdOut(text);
                }
            } catch (RuntimeException e) {
                fallback.write(b, off, len); // the front end is gone: keep the text somewhere
            }
        }

        @Override
        public void flush() {
            fallback.flush();
        }
    }

    /** The request being answered, from the basekernel's stdout stream (it keeps it private), or null. */
    private static ShellReplyEnvironment currentRequest(JupyterIO io) {
        try {
            Field out = JupyterIO.class.getDeclaredField("jupyterOut");
            out.setAccessible(true);
            Field env = JupyterOutputStream.class.getDeclaredField("env");
            env.setAccessible(true);
            return (ShellReplyEnvironment) env.get(out.get(io));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null; // another basekernel: output of late threads goes where it went before
        }
    }
}
