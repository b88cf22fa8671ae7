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
 * capped size with the stacks longtune's engine runs today, next to the context that was asked for. First the
 * faster one, parameters resident ({@link Stacks#engineResident}: its FlashAttention-2, offloaded checkpoints,
 * fused ops, optimizer on the host); when the asked context does not fit that, the most memory-saving one,
 * {@code engine}, which also offloads the parameters (ZeRO-3-style, {@code --offload parameters}).
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
            TechniqueSet resident = residentStack(node), offloaded = stack(node);
            ContextSearch search = new ContextSearch(EngineProfile.LONGTUNE);
            long maxResident = search.maxContext(m, node, resident);
            long maxOffloaded = search.maxContext(m, node, offloaded);
            String cap = Units.human(allocatorBytes(node));
            if (maxResident <= 0 && maxOffloaded <= 0) {
                return String.format(Locale.ROOT, "The planner (longtune profile, %s) finds no context at which %s fits "
                        + "one GPU of %s with %s of host RAM: use more GPU or host memory, or a smaller model; details: %s",
                        offloaded.describe(), m.name(), cap, Units.human(hostRamBytes), ask);
            }
            if (context <= maxResident || maxOffloaded <= maxResident) {
                return String.format(Locale.ROOT, "The planner (longtune profile, %s) fits at most %,d tokens of %s in %s "
                        + "(this run asked for %,d): lower --context, or use --checkpointing offload and --optimizer host; "
                        + "details: %s", resident.describe(), maxResident, m.name(), cap, context, ask);
            }
            String tiling = "";
            if (context > maxOffloaded) {
                // the MLP in sequence tiles (train --tile) takes one tile's room for its wide tensors
                long maxTiled = search.maxContext(m, node, offloaded.withSequenceTile(Stacks.DEFAULT_TILE));
                tiling = context <= maxTiled
                        ? String.format(Locale.ROOT, " and --tile %d (the MLP in sequence tiles: at most %,d tokens)", Stacks.DEFAULT_TILE, maxTiled)
                        : String.format(Locale.ROOT, " and --tile %d, and lower --context (with tiles at most %,d)", Stacks.DEFAULT_TILE, maxTiled);
            }
            return String.format(Locale.ROOT, "The planner (longtune profile, %s) fits at most %,d tokens of %s in %s "
                    + "(this run asked for %,d) with the parameters offloaded: use --offload parameters,optimizer,checkpoints%s; "
                    + "with the parameters resident (%s) at most %,d; details: %s", offloaded.describe(), maxOffloaded,
                    m.name(), cap, context, tiling, resident.describe(), Math.max(0, maxResident), ask);
        } catch (RuntimeException e) {
            return String.format(Locale.ROOT, "Lower --context (this run asked for %,d), or use --offload "
                    + "parameters,optimizer,checkpoints; ask the planner: %s", context, ask);
        }
    }

    /** The most memory-saving stack the engine runs ({@code engine}), which {@link EngineSupport} confirms. */
    static TechniqueSet stack(NodeProfile node) {
        return checked(Stacks.named(STACK, node, EngineProfile.LONGTUNE), node);
    }

    /** The engine's stack with the parameters resident on the GPU. */
    static TechniqueSet residentStack(NodeProfile node) {
        return checked(Stacks.engineResident(node, EngineProfile.LONGTUNE), node);
    }

    private static TechniqueSet checked(TechniqueSet stack, NodeProfile node) {
        if (!EngineSupport.runs(stack, node)) {
            throw new IllegalStateException("the advice's stack is one the engine cannot run: " + EngineSupport.missing(stack, node));
        }
        return stack;
    }

    /**
     * One H200 whose allocator is capped at {@code capBytes}: the cap limits the allocator's reserved bytes, and
     * the CUDA context and cuBLAS's own workspace lie outside it, so the GPU the planner sees is the cap plus those.
     */
    static NodeProfile cappedNode(long capBytes, long hostRamBytes) { return cappedNode(capBytes, hostRamBytes, 1); }

    /** The same node with {@code gpus} such GPUs (ZeRO-3 over them). */
    static NodeProfile cappedNode(long capBytes, long hostRamBytes, int gpus) {
        GpuProfile base = GpuCatalog.get("H200");
        long outside = GpuRuntime.cudaContextBytes(base) + GpuRuntime.cublasWorkspaceBytes(base);
        long allocator = capBytes == Long.MAX_VALUE ? base.memoryBytes() - outside : capBytes;
        GpuProfile capped = base.withMemory("GPU capped at " + Units.human(allocator), allocator + outside);
        NodeProfile host = NodeCatalog.cpu();
        return new NodeProfile(gpus + "x" + capped.name(), capped, gpus, hostRamBytes, host.cores(), host.hostMemoryGBps());
    }

    static long allocatorBytes(NodeProfile node) {
        return node.gpu().memoryBytes() - GpuRuntime.cudaContextBytes(node.gpu()) - GpuRuntime.cublasWorkspaceBytes(node.gpu());
    }
}
