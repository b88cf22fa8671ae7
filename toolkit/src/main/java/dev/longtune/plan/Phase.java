package dev.longtune.plan;

/** The moments of a training step at which memory is predicted. */
public enum Phase {
    FORWARD("forward"),
    LOSS("loss"),
    /** Backward of one decoder layer, recomputed from its checkpoint when checkpointing is on. */
    BACKWARD("backward"),
    OPTIMIZER("optimizer step");

    public final String id;

    Phase(String id) { this.id = id; }

    @Override
    public String toString() { return id; }
}
