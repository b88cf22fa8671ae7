package dev.longtune.run;

import java.util.ArrayList;
import java.util.List;

/**
 * SIGTERM (a scheduler's preemption) and SIGINT (Ctrl-C) asking a training loop to stop: while installed, the
 * signals set a flag instead of ending the process, and the loop finishes its step, saves and exits with
 * {@link #EXIT_CODE}. A second signal of either kind ends the process at once, as usual. Where the JVM lacks the
 * signal API (a runtime without jdk.unsupported) nothing is installed and the signals behave as usual.
 */
public final class StopSignal implements AutoCloseable {
    /** The exit code of a run stopped by a signal after saving (EX_TEMPFAIL: try again, e.g. requeue and resume). */
    public static final int EXIT_CODE = 75;

    private volatile String received;
    private final List<Object[]> previous = new ArrayList<>();

    private StopSignal() {}

    /** Installs the handlers for TERM and INT; close restores the previous ones. */
    public static StopSignal install() {
        StopSignal s = new StopSignal();
        for (String name : new String[] {"TERM", "INT"}) {
            try {
                sun.misc.Signal signal = new sun.misc.Signal(name);
                sun.misc.SignalHandler old = sun.misc.Signal.handle(signal, sig -> s.receive(sig.getName()));
                s.previous.add(new Object[] {signal, old});
            } catch (IllegalArgumentException | LinkageError e) {
                // the signal cannot be handled here (or no signal API): leave its default
            }
        }
        return s;
    }

    private void receive(String name) {
        if (received != null) {
            Runtime.getRuntime().halt(128 + (name.equals("INT") ? 2 : 15)); // a second signal: stop now
        }
        received = name;
    }

    /** The signal that asked to stop ("TERM", "INT"), or null. */
    public String received() { return received; }

    @Override
    public void close() {
        for (Object[] p : previous) {
            sun.misc.Signal.handle((sun.misc.Signal) p[0], (sun.misc.SignalHandler) p[1]);
        }
    }
}
