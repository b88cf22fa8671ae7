package dev.longtune.notebook;

/** Progress of long work: one {@link #step} per unit; closing shows it finished. */
public interface Progress extends AutoCloseable {
    void step(String message);

    default void step() { step(""); }

    @Override
    void close();
}
