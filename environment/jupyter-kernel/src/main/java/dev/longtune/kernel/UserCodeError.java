package dev.longtune.kernel;

import java.util.List;

/**
 * Carries a {@link java.lang.Error} (StackOverflowError, OutOfMemoryError, ...) thrown by a cell. The
 * kernel's error path takes only Exceptions, so the error travels wrapped; its report names the error.
 */
public final class UserCodeError extends Exception {
    private final List<String> report;

    UserCodeError(Throwable error, List<String> report) {
        super(error.toString(), error);
        this.report = List.copyOf(report);
    }

    public List<String> report() {
        return report;
    }
}
