package dev.longtune.model;

/** Cleaning up after a training step that threw (an interrupt, an out-of-memory error, Thread.stop). */
public final class FailedStep {
    private FailedStep() {}

    /**
     * Runs {@code cleanup} with the thread's interrupt status cleared (so that its waits do not end early) and
     * restored afterwards for the caller; a failure of the cleanup is added to {@code failure}, which stays the one
     * to throw.
     */
    public static void cleanUp(Throwable failure, Runnable cleanup) {
        boolean interrupted = Thread.interrupted();
        try {
            cleanup.run();
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
