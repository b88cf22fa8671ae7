package dev.longtune.tensor;

/**
 * The one vocabulary for memory, shared by the planner's predictions and the profiler's measurements
 * (docs/architecture.md, "Memory"): every allocation carries exactly one of these.
 */
public enum MemoryCategory {
    WEIGHTS("weights"),
    GRADS("grads"),
    OPTIMIZER("optimizer"),
    CHECKPOINTS("checkpoints"),
    ACTIVATIONS("activations"),
    WORKSPACE("workspace"),
    LOGITS("logits"),
    COMM("comm"),
    OTHER("other");

    public final String id;

    MemoryCategory(String id) { this.id = id; }

    @Override
    public String toString() { return id; }
}
