package dev.longtune.model;

/**
 * A training step stopped at a layer boundary because its thread was interrupted (a notebook's interrupt button, a
 * loop's cancel). Nothing of the step remains: the model's weights, the optimizer, the step counter and the memory
 * are as they were before it, and the thread's interrupt status is still set.
 */
public final class StepInterruptedException extends RuntimeException {
    public StepInterruptedException(String message) {
        super(message);
    }
}
