package dev.longtune.plan;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;

/** The planner's two questions: how long a context fits, and the cheapest techniques that fit a context. */
public final class ContextSearch {
    /** Longest context searched: 16M tokens. */
    public static final long MAX_SEARCH = 1L << 24;

    private final MemoryPlanner planner;
    private final ThroughputModel throughput;

    public ContextSearch(EngineProfile profile) {
        this.planner = new MemoryPlanner(profile);
        this.throughput = new ThroughputModel(profile);
    }

    /**
     * The largest context (tokens per sequence) whose GPU and host peaks both fit the node, or 0 when not
     * even one token fits. Memory never shrinks as the context grows, so a binary search is exact.
     */
    public long maxContext(ModelConfig model, NodeProfile node, TechniqueSet stack) {
        if (!planner.plan(model, node, stack, 1).fits()) {
            return 0;
        }
        long lo = 1, hi = MAX_SEARCH;
        if (planner.plan(model, node, stack, hi).fits()) {
            return hi;
        }
        while (hi - lo > 1) {
            long mid = (lo + hi) >>> 1;
            if (planner.plan(model, node, stack, mid).fits()) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** A candidate that fits, with what ranks it. */
    public record Candidate(TechniqueSet stack, int offloads, MemoryPlan plan, Throughput throughput) {}

    /**
     * Every technique set that fits {@code context}, cheapest first: fewest offloads (optimizer,
     * parameters, checkpoints), then the highest predicted tokens/s (tiling costs an MLP recompute).
     * Precision, micro-batch and pinned memory stay as in the node's baseline.
     */
    public List<Candidate> cheapest(ModelConfig model, NodeProfile node, long context) {
        TechniqueSet base = Stacks.baseline(node, planner.profile());
        List<Candidate> fits = new ArrayList<>();
        for (Checkpointing ckpt : Checkpointing.values()) {
            for (Attention attention : Attention.values()) {
                for (boolean liger : new boolean[] {false, true}) {
                    for (int[] zero : new int[][] {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}, {1, 1, 0},
                            {2, 1, 0}, {3, 1, 0}, {3, 1, 1}}) {
                        for (int tile : new int[] {0, Stacks.DEFAULT_TILE}) {
                            TechniqueSet t = base.withCheckpointing(ckpt).withAttention(attention)
                                    .withLiger(liger ? EnumSet.allOf(LigerOp.class) : EnumSet.noneOf(LigerOp.class))
                                    .withZero(zero[0], zero[1] == 1, zero[2] == 1).withSequenceTile(tile);
                            if (!t.problems(node, planner.profile()).isEmpty()) {
                                continue;
                            }
                            MemoryPlan plan = planner.plan(model, node, t, context);
                            if (plan.fits()) {
                                int offloads = zero[1] + zero[2] + (ckpt == Checkpointing.OFFLOAD ? 1 : 0);
                                fits.add(new Candidate(t, offloads, plan, throughput.estimate(model, node, t, context)));
                            }
                        }
                    }
                }
            }
        }
        // ties (the throughput model does not price fused kernels) go to more fused ops, then no tiling,
        // then the lower ZeRO stage: the simpler set
        fits.sort(Comparator.comparingInt(Candidate::offloads)
                .thenComparing(c -> -c.throughput().tokensPerSecond())
                .thenComparing(c -> -c.stack().liger().size())
                .thenComparingInt(c -> c.stack().sequenceTile())
                .thenComparingInt(c -> c.stack().zeroStage()));
        return fits;
    }
}
