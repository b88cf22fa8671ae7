package dev.longtune.plan;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;

import java.util.function.UnaryOperator;

/**
 * The fluent entry point for notebooks and scripts:
 * {@code Plan.of("llama-3.1-8b").on("study-8xV100").stack("all").at(131072)}.
 * Each step returns a new immutable builder; {@link #at(long)} computes the plan.
 */
public final class Plan {
    private final ModelConfig model;
    private final NodeProfile node;
    private final EngineProfile profile;
    private final String stackName;
    private final UnaryOperator<TechniqueSet> tweak;

    private Plan(ModelConfig model, NodeProfile node, EngineProfile profile, String stackName,
                 UnaryOperator<TechniqueSet> tweak) {
        this.model = model;
        this.node = node;
        this.profile = profile;
        this.stackName = stackName;
        this.tweak = tweak;
    }

    public static Plan of(String model) { return of(ModelCatalog.get(model)); }

    public static Plan of(ModelConfig model) {
        return new Plan(model, NodeCatalog.get("study-8xV100"), EngineProfile.HF_DEEPSPEED, "study", t -> t);
    }

    public Plan on(String node) { return on(NodeCatalog.get(node)); }

    public Plan on(NodeProfile node) { return new Plan(model, node, profile, stackName, tweak); }

    public Plan profile(String profile) { return profile(EngineProfile.parse(profile)); }

    public Plan profile(EngineProfile profile) { return new Plan(model, node, profile, stackName, tweak); }

    public Plan stack(String name) {
        Stacks.named(name, node, profile); // fail early on an unknown name
        return new Plan(model, node, profile, name, tweak);
    }

    /** Refines the named stack, e.g. {@code .with(t -> t.withMicroBatch(2))}. */
    public Plan with(UnaryOperator<TechniqueSet> change) {
        UnaryOperator<TechniqueSet> before = tweak;
        return new Plan(model, node, profile, stackName, t -> change.apply(before.apply(t)));
    }

    public TechniqueSet techniques() { return tweak.apply(Stacks.named(stackName, node, profile)); }

    public MemoryPlan at(long context) {
        return new MemoryPlanner(profile).plan(model, node, techniques(), context);
    }

    /** One plan per context length, e.g. {@code sweep(8192, 32768, 131072)}. */
    public Sweep sweep(long... contexts) {
        java.util.List<MemoryPlan> plans = new java.util.ArrayList<>();
        for (long c : contexts) {
            plans.add(at(c));
        }
        return new Sweep(plans);
    }

    /** The longest context that fits the node with these techniques. */
    public long maxContext() {
        return new ContextSearch(profile).maxContext(model, node, techniques());
    }

    public Throughput throughputAt(long context) {
        return new ThroughputModel(profile).estimate(model, node, techniques(), context);
    }

    public ModelConfig model() { return model; }

    public NodeProfile node() { return node; }

    public EngineProfile engineProfile() { return profile; }
}
