package dev.longtune.kernel;

/** The user interrupted the cell (the kernel stopped its code); the kernel itself goes on. */
public final class CellInterruptedException extends Exception {
    CellInterruptedException() {
        this("the cell was interrupted");
    }

    CellInterruptedException(String message) {
        super(message);
    }
}
