package dev.longtune.cli;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.EngineSupport;
import dev.longtune.config.GpuCatalog;
import dev.longtune.config.GpuProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.GpuRuntime;
import dev.longtune.plan.Units;

import java.util.Locale;

/**
 * What an out-of-memory error on the GPU suggests: the planner's longest context for the model on one GPU of the
 * capped size with the most memory-saving stack the engine runs today ({@code engine}: its FlashAttention-2,
 * offloaded checkpoints, fused ops, optimizer on the host; no parameter offload or tiling, which the engine
 * cannot run yet), next to the context that was asked for.
 */
final class PlannerAdvice {
    static final String STACK = "engine";

    private PlannerAdvice() {}

    static String forRun(String model, long capBytes, long context) {
        return forRun(model, capBytes, context, NodeCatalog.cpu().hostRamBytes());
    }

    /** With the host RAM of the machine that trains (the optimizer state and offloads live there). */
    static String forRun(String model, long capBytes, long context, long hostRamBytes) {
        String ask = "./longtune max-context --model " + model + " --node 1x<GPU> --stack " + STACK + " --profile longtune";
        try {
            ModelConfig m = ModelCatalog.get(model);
            NodeProfile node = cappedNode(capBytes, hostRamBytes);
            TechniqueSet stack = stack(node);
            long max = new ContextSearch(EngineProfile.LONGTUNE).maxContext(m, node, stack);
            String cap = Units.human(allocatorBytes(node));
            if (max <= 0) {
                return String.format(Locale.ROOT, "The planner (longtune profile, %s) finds no context at which %s fits "
                        + "one GPU of %s with %s of host RAM: use more GPU or host memory, or a smaller model; details: %s",
                        stack.describe(), m.name(), cap, Units.human(hostRamBytes), ask);
            }
            return String.format(Locale.ROOT, "The planner (longtune profile, %s) fits at most %,d tokens of %s in %s "
                    + "(this run asked for %,d): lower --context, or use --checkpointing offload and --optimizer host; "
                    + "details: %s", stack.describe(), max, m.name(), cap, context, ask);
        } catch (RuntimeException e) {
            return "Lower --context, or use --checkpointing offload and --optimizer host; ask the planner: " + ask;
        }
    }

    /** The stack the advice plans: the engine's, which {@link EngineSupport} confirms it runs. */
    static TechniqueSet stack(NodeProfile node) {
        TechniqueSet stack = Stacks.named(STACK, node, EngineProfile.LONGTUNE);
        if (!EngineSupport.runs(stack, node)) {
            throw new IllegalStateException("the advice's stack is one the engine cannot run: " + EngineSupport.missing(stack, node));
        }
        return stack;
    }

    /**
     * One H200 whose allocator is capped at {@code capBytes}: the cap limits the allocator's reserved bytes, and
     * the CUDA context lies outside it, so the GPU the planner sees is the cap plus the context.
     */
    static NodeProfile cappedNode(long capBytes, long hostRamBytes) {
        GpuProfile base = GpuCatalog.get("H200");
        long allocator = capBytes == Long.MAX_VALUE ? base.memoryBytes() - GpuRuntime.cudaContextBytes(base) : capBytes;
        GpuProfile capped = base.withMemory("GPU capped at " + Units.human(allocator),
                allocator + GpuRuntime.cudaContextBytes(base));
        NodeProfile host = NodeCatalog.cpu();
        return new NodeProfile("1x" + capped.name(), capped, 1, hostRamBytes, host.cores(), host.hostMemoryGBps());
    }

    static long allocatorBytes(NodeProfile node) { return node.gpu().memoryBytes() - GpuRuntime.cudaContextBytes(node.gpu()); }
}
