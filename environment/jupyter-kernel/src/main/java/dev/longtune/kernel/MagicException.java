package dev.longtune.kernel;

/** A line magic (%classpath, %jars, ...) is unknown or could not do its work. */
public final class MagicException extends Exception {
    MagicException(String message) {
        super(message);
    }
}
