package dev.longtune.kernel;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import jdk.jshell.execution.DirectExecutionControl;
import jdk.jshell.spi.ExecutionControl;
import jdk.jshell.spi.ExecutionControlProvider;
import jdk.jshell.spi.ExecutionEnv;

/**
 * Runs snippets in this JVM and keeps their results as live objects.
 *
 * <p>JShell's stock engines turn a snippet's value into a string. Here {@link #invoke(Method)} stores the
 * object under a key and hands JShell the key as the "value", so the kernel can look the object up and
 * render it. Each snippet runs on a fresh worker thread so that an interrupt can reach it:
 * {@link DirectExecutionControl#stop()} does nothing.
 */
final class LiveExecutionControl extends DirectExecutionControl {

    private static final String KEY_PREFIX = "longtune-result-";

    private final SnippetLoader loader;
    private final Duration stopGrace;
    private final AtomicLong keys = new AtomicLong();
    private final Map<String, Object> results = new HashMap<>();

    private volatile Thread running;
    private volatile boolean interruptRequested;
    private volatile boolean stopped;
    private volatile Throwable lastThrown;

    LiveExecutionControl(SnippetLoader loader, Duration stopGrace) {
        super(loader);
        this.loader = loader;
        this.stopGrace = stopGrace;
    }

    /** An engine provider that hands JShell this very instance. */
    ExecutionControlProvider provider() {
        LiveExecutionControl self = this;
        return new ExecutionControlProvider() {
            @Override
            public String name() {
                return "longtune-live";
            }

            @Override
            public ExecutionControl generate(ExecutionEnv env, Map<String, String> parameters) {
                return self;
            }
        };
    }

    @Override
    protected String invoke(Method doit) throws Exception {
        Object[] result = new Object[1];
        Throwable[] failure = new Throwable[1];
        Thread worker = new Thread(() -> {
            try {
                result[0] = doit.invoke(null);
            } catch (InvocationTargetException e) {
                failure[0] = e.getCause();
            } catch (Throwable t) {
                // Thread.stop may land here, outside the user's code.
                failure[0] = t;
            }
        }, "longtune-cell");
        worker.setDaemon(true);
        worker.setContextClassLoader(loader.classLoader());
        Thread outer = running; // a cell's eval(String) runs a snippet inside the cell's own snippet
        running = worker;
        try {
            worker.start();
            if (interruptRequested) {
                interrupt(); // it came while the snippet compiled, before there was a thread to interrupt
            }
            worker.join();
        } finally {
            running = outer; // an interrupt now reaches the enclosing snippet again
        }
        if (failure[0] != null) {
            // Kept so the kernel reports the user's own exception, not JShell's EvalException copy.
            lastThrown = failure[0];
            throw new InvocationTargetException(failure[0]);
        }
        String key = KEY_PREFIX + keys.incrementAndGet();
        synchronized (results) {
            results.put(key, result[0]);
        }
        return key;
    }

    /** The live object behind a value string from JShell, or the string itself if it is not a key. */
    Object takeResult(String valueString) {
        synchronized (results) {
            if (valueString != null && results.containsKey(valueString)) {
                return results.remove(valueString);
            }
        }
        return valueString;
    }

    void clearResults() {
        synchronized (results) {
            results.clear();
        }
    }

    /** What the last failing snippet threw, once. */
    Throwable takeThrown() {
        Throwable t = lastThrown;
        lastThrown = null;
        return t;
    }

    /** Called when a cell starts: forget an interrupt that arrived between cells. */
    void resetInterrupt() {
        interruptRequested = false;
        stopped = false;
    }

    boolean interruptRequested() {
        return interruptRequested;
    }

    /** Whether the running snippet had to be stopped with Thread.stop. */
    boolean wasStopped() {
        return stopped;
    }

    /**
     * Interrupts the running snippet; if it is still running after the grace period, stops its thread.
     * Returns at once (the interrupt reply must not wait).
     */
    void interrupt() {
        interruptRequested = true;
        Thread worker = running;
        if (worker == null) {
            return;
        }
        worker.interrupt();
        CompletableFuture.runAsync(() -> stopIfStillRunning(worker),
                CompletableFuture.delayedExecutor(stopGrace.toMillis(), TimeUnit.MILLISECONDS));
    }

    /**
     * Whether a thread with this stack is inside code that answers interrupts itself and must not be stopped halfway:
     * a training step ends at its next layer boundary and gives back everything it held, where Thread.stop could land
     * in the optimizer's update and leave half the weights written.
     */
    static boolean answersInterruptsItself(StackTraceElement[] stack) {
        for (StackTraceElement f : stack) {
            if (f.getClassName().equals("dev.longtune.train.Trainer") && f.getMethodName().equals("step")) {
                return true;
            }
        }
        return false;
    }

    @SuppressWarnings({"deprecation", "removal"})
    private void stopIfStillRunning(Thread worker) {
        if (running == worker && worker.isAlive() && answersInterruptsItself(worker.getStackTrace())) {
            CompletableFuture.runAsync(() -> stopIfStillRunning(worker), // look again once the step has ended
                    CompletableFuture.delayedExecutor(stopGrace.toMillis(), TimeUnit.MILLISECONDS));
            return;
        }
        if (running == worker && worker.isAlive()) {
            stopped = true;
            try {
                // Allowed up to JDK 19; the only way to end code that ignores interrupts (while (true) {}).
                worker.stop();
            } catch (UnsupportedOperationException e) {
                System.err.println("longtune kernel: cannot stop the cell on this JDK: " + e.getMessage());
            }
        }
    }
}
