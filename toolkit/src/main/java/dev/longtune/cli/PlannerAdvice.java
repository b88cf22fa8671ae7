package dev.longtune.cli;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.GpuCatalog;
import dev.longtune.config.GpuProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.Units;

import java.util.Locale;

/**
 * What an out-of-memory error on the GPU suggests: the planner's longest context for the model on one GPU of
 * the capped size with every technique (longtune profile), next to the context that was asked for.
 */
final class PlannerAdvice {
    private PlannerAdvice() {}

    static String forRun(String model, long capBytes, long context) {
        return forRun(model, capBytes, context, NodeCatalog.cpu().hostRamBytes());
    }

    /** With the host RAM of the machine that trains (the optimizer state and offloads live there). */
    static String forRun(String model, long capBytes, long context, long hostRamBytes) {
        String ask = "./longtune max-context --model " + model + " --node 1x<GPU> --stack all";
        try {
            ModelConfig m = ModelCatalog.get(model);
            GpuProfile base = GpuCatalog.get("H200");
            long memory = capBytes == Long.MAX_VALUE ? base.memoryBytes() : capBytes;
            GpuProfile capped = new GpuProfile("GPU capped at " + Units.human(memory), base.description(), memory,
                    base.fp16Tflops(), base.bf16Tflops(), base.hbmGBps(), base.pcieGen(), base.hostLinkGBps(),
                    base.nvlinkGBps(), base.computeCapability());
            NodeProfile host = NodeCatalog.cpu();
            NodeProfile node = new NodeProfile("1x" + capped.name(), capped, 1, hostRamBytes, host.cores(),
                    host.hostMemoryGBps());
            TechniqueSet all = Stacks.named("all", node, EngineProfile.LONGTUNE);
            long max = new ContextSearch(EngineProfile.LONGTUNE).maxContext(m, node, all);
            if (max <= 0) {
                return String.format(Locale.ROOT, "The planner (longtune profile, %s) finds no context at which %s fits "
                        + "one GPU of %s with %s of host RAM: use more GPU or host memory, or a smaller model; details: %s",
                        all.describe(), m.name(), Units.human(memory), Units.human(hostRamBytes), ask);
            }
            return String.format(Locale.ROOT, "The planner (longtune profile, %s) fits at most %,d tokens of %s in %s "
                    + "(this run asked for %,d): lower --context, or use --checkpointing offload and --optimizer host; "
                    + "details: %s", all.describe(), max, m.name(), Units.human(memory), context, ask);
        } catch (RuntimeException e) {
            return "Lower --context, or use --checkpointing offload and --optimizer host; ask the planner: " + ask;
        }
    }
}
