package dev.longtune.config;

import java.util.List;

/** A technique set that cannot run on the chosen node; the message lists every reason with its fix. */
public class InvalidTechniqueException extends IllegalArgumentException {
    private final List<String> reasons;

    public InvalidTechniqueException(List<String> reasons) {
        super("invalid technique set: " + String.join("; ", reasons));
        this.reasons = List.copyOf(reasons);
    }

    public List<String> reasons() { return reasons; }
}
