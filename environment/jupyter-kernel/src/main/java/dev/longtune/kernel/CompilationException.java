package dev.longtune.kernel;

import java.util.List;

/** A snippet of the cell did not compile; the report shows each diagnostic with its source line. */
public final class CompilationException extends Exception {
    private final List<String> report;

    CompilationException(String message, List<String> report) {
        super(message);
        this.report = List.copyOf(report);
    }

    /** Lines to show the user: messages, the failing lines of the cell and carets under the problem. */
    public List<String> report() {
        return report;
    }
}
