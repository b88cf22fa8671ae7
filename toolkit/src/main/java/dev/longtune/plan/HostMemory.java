package dev.longtune.plan;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.PinnedMemory;
import dev.longtune.config.TechniqueSet;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryLocation;

import static dev.longtune.plan.Units.count;
import static dev.longtune.plan.Units.powerOfTwoCeil;
import static dev.longtune.tensor.MemoryCategory.CHECKPOINTS;
import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.OPTIMIZER;
import static dev.longtune.tensor.MemoryCategory.OTHER;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;

/**
 * Host memory of one node: the offloaded model states, the offloaded checkpoints and the training
 * processes themselves. Host buffers live for the whole run (pinned memory is allocated once and PyTorch's
 * pinned cache never returns it), so every phase holds the same terms except where noted.
 *
 * <p>{@code hf-deepspeed} follows DeepSpeed's ZeRO-3 offload code (stage3.py, partition_parameters.py,
 * cpu_adam.py) buffer by buffer, each pinned one rounded up to a power of two by PyTorch's caching host
 * allocator. {@code longtune} holds the same states at exact sizes in one pinned pool, with no
 * compute-precision gradient copy and no cache left over from start-up.
 */
final class HostMemory {
    /** DeepSpeed's ZeRO-3 {@code sub_group_size} default: the FP32 gradients are pinned per sub-group. */
    static final long SUB_GROUP_ELEMENTS = 1_000_000_000L;
    /**
     * Host memory of one training process besides the tensors counted above. A bare PyTorch 2.11 process
     * with a CUDA context, cuBLAS and SDPA loaded and transformers imported holds 0.85 GiB
     * (bench/results/process-rss-h200.json; PyTorch selects lazy CUDA module loading; eager loading would
     * hold 5.16 GiB). A training process adds DeepSpeed with its JIT-built CPU Adam, NCCL, the Trainer and
     * the tokenised dataset, which no machine here can measure: this is the model's one allowance, 3 GiB
     * per process in all (docs/memory-model.md, "Per-process runtime").
     */
    static final long PROCESS_RUNTIME_HF = 3L << 30;
    /**
     * longtune's process: the measured CUDA context and libraries (0.85 GiB, as above) and a JVM with the
     * toolkit loaded and a 1 GiB heap cap; tensors live off-heap and are counted above.
     */
    static final long PROCESS_RUNTIME_LONGTUNE = 2L << 30;

    private final EngineProfile profile;
    private final ModelConfig m;
    private final TechniqueSet s;
    private final int G, P, e;
    private final long N, contextTokens;
    private final boolean cpu;

    HostMemory(EngineProfile profile, ModelConfig m, TechniqueSet s, int gpusOnNode, int worldSize, long context) {
        this(profile, m, s, gpusOnNode, worldSize, context, false);
    }

    HostMemory(EngineProfile profile, ModelConfig m, TechniqueSet s, int gpusOnNode, int worldSize, long context, boolean cpu) {
        this.cpu = cpu;
        this.contextTokens = context;
        this.profile = profile;
        this.m = m;
        this.s = s;
        this.G = gpusOnNode;
        this.P = worldSize;
        this.e = s.precision().bytes;
        this.N = m.totalParameters();
    }

    private boolean caching() { return s.pinnedMemory() == PinnedMemory.CACHING; }

    /** What the pinned allocator really holds for a request of {@code bytes}. */
    private long pinned(long bytes) { return caching() ? powerOfTwoCeil(bytes) : bytes; }

    private String roundingNote() { return caching() ? ", rounded up to a power of two" : ""; }

    /** Buffers the engine pins, unless the policy is pageable memory. */
    private MemoryLocation pinnedOrNot() {
        return s.pinnedMemory() == PinnedMemory.PAGEABLE ? MemoryLocation.HOST_PAGEABLE : MemoryLocation.HOST_PINNED;
    }

    Breakdown at(Phase phase) {
        Breakdown b = new Breakdown(MemoryLocation.HOST_PAGEABLE);
        MemoryLocation pinnable = pinnedOrNot();
        long partition = ceilDiv(N, P);
        long offloaded = N - residentParameters(); // the layers resident on the GPU are not on the host
        long offloadedShard = partition - residentShardElements(); // the same for a rank's shards (ZeRO-3)
        if (s.offloadParameters() && offloaded != N) {
            b.add(WEIGHTS, pinnable, "compute-precision weights (all but the resident ones)", pinned(e * offloaded),
                    "e·(" + offloadedFormula() + ") = " + e + " × " + count(offloaded) + roundingNote());
        } else if (s.offloadParameters()) {
            b.add(WEIGHTS, pinnable, "compute-precision weight partitions" + (offloadedShard != partition ? " (all but the resident shards)" : ""),
                    G * pinned(e * offloadedShard), "G·e·" + partitionFormula() + " = " + G + " × " + e + " × " + count(offloadedShard) + roundingNote());
            if (profile == EngineProfile.HF_DEEPSPEED && caching()) {
                long cached = zeroInitCache();
                b.add(WEIGHTS, MemoryLocation.HOST_PINNED, "zero.Init's per-tensor partitions, freed into PyTorch's pinned cache", G * cached,
                        "G·Σ pow2(e·⌈numel/P⌉) over " + m.parameterTensors().size() + " tensors");
            }
        }
        if (s.offloadOptimizer()) {
            int k = s.precision().mixed() ? 12 : 8;
            if (offloaded != N) {
                b.add(OPTIMIZER, "optimizer states: FP32 master, m, v (all but the resident ones)", k * offloaded,
                        k + "·(" + offloadedFormula() + ") = " + k + " × " + count(offloaded));
            } else {
                b.add(OPTIMIZER, "optimizer states: FP32 master, m, v" + (offloadedShard != partition ? " (all but the resident shards)" : ""),
                        G * k * offloadedShard, "G·" + k + "·" + partitionFormula() + " = " + G + " × " + k + " × " + count(offloadedShard));
            }
            if (engineOnOneGpu()) {
                engineGradients(b, phase, pinnable);
            } else if (engineSharded()) {
                shardedGradients(b, phase, pinnable, partition, offloadedShard);
            } else {
                b.add(GRADS, pinnable, "FP32 gradient partitions (one per sub-group)", G * fp32GradientBuffers(),
                        "G·Σ 4·sub-group, sub-groups closed at the parameter reaching " + count(SUB_GROUP_ELEMENTS)
                                + " elements" + roundingNote());
            }
            if (profile == EngineProfile.HF_DEEPSPEED && s.precision().mixed()) {
                b.add(GRADS, pinnable, "compute-precision gradient partition (grad_partitions_flat_buffer)",
                        G * pinned(e * partition), "G·e·⌈N/P⌉" + roundingNote());
            }
        }
        if (s.checkpointing() == Checkpointing.OFFLOAD
                && (phase == Phase.FORWARD || phase == Phase.LOSS || phase == Phase.BACKWARD
                    || s.pinnedMemory() != PinnedMemory.PAGEABLE)) {
            long one = (long) s.microBatch() * contextTokens * m.hiddenSize() * e;
            // a last layer that keeps its saved tensors on the GPU sends nothing to the host (keepLastLayer)
            int sent = profile == EngineProfile.LONGTUNE ? s.checkpointedLayers(m.numLayers()) : m.numLayers();
            b.add(CHECKPOINTS, pinnable, "offloaded layer inputs", (long) G * sent * pinned(one),
                    "G·L·T·h·e = " + G + " × " + sent + " × " + count(one) + roundingNote()
                            + (sent < m.numLayers() ? " (the last layer keeps its tensors on the GPU)" : ""));
            int kept = profile == EngineProfile.LONGTUNE ? s.offloadedAttentionLayers(m.numLayers()) : s.keptAttentionLayers(m.numLayers());
            if (kept > 0) {
                long att = (long) s.microBatch() * contextTokens * m.queryDim() * e;
                long lse = 4L * s.microBatch() * contextTokens * m.numHeads();
                b.add(CHECKPOINTS, pinnable, "offloaded attention outputs and lse (backward skips recomputing attention)",
                        (long) G * kept * (pinned(att) + pinned(lse)), "G·L′·(T·q·e + 4·H·T) = " + G + " × "
                                + kept + " × (" + count(att) + " + " + count(lse) + ")"
                                + (kept < m.numLayers() ? " (L′: the first " + kept + " of " + m.numLayers() + " layers)" : "")
                                + roundingNote());
            }
        }
        if (engineOnOneGpu() && !cpu && phase == Phase.LOSS) {
            // the fused loss reads its per-token losses back through a pinned FP32 buffer (cuda/CudaDevice.read)
            b.add(MemoryCategory.WORKSPACE, pinnable, "per-token losses read back (FP32)", 4L * s.microBatch() * contextTokens,
                    "4·T");
        }
        long runtime = profile == EngineProfile.HF_DEEPSPEED ? PROCESS_RUNTIME_HF : PROCESS_RUNTIME_LONGTUNE;
        if (engineSharded()) {
            // one process per node drives all its GPUs (a thread each): one JVM, and a CUDA context per further GPU
            b.add(OTHER, "the training process (JVM, CUDA contexts, libraries)", runtime + (G - 1) * CUDA_CONTEXT_HOST,
                    Units.human(runtime) + " + (G−1) × " + Units.human(CUDA_CONTEXT_HOST));
            return b;
        }
        b.add(OTHER, "training processes (CUDA context, libraries, interpreter)", G * runtime,
                "G × " + Units.human(runtime));
        return b;
    }

    /** longtune's engine on one GPU (the only way it runs offloaded state): see {@link #engineGradients}. */
    private boolean engineOnOneGpu() { return profile == EngineProfile.LONGTUNE && P == 1; }

    /** What of N stays on the host: "N − K·Lp", "N − V·h" or both terms. */
    private String offloadedFormula() {
        return "N" + (s.residentLayers(m.numLayers()) > 0 ? " − K·Lp" : "") + (s.residentEmbedding() ? " − V·h" : "");
    }

    /** Parameters of the decoder layers that stay on the GPU out of an offloaded model (one GPU, see TechniqueSet). */
    private long residentParameters() {
        return engineOnOneGpu() && s.offloadParameters() && !cpu
                ? (long) s.residentLayers(m.numLayers()) * m.layerParameters()
                        + (s.residentEmbedding() ? (long) m.vocabSize() * m.hiddenSize() : 0) : 0;
    }

    /**
     * Elements of one rank's shards that stay on its GPU (ZeRO-3 with offload, model/ShardedParameters): K layers'
     * chunks of ⌈Lp/P⌉ and the embedding's ⌈V·h/P⌉.
     */
    private long residentShardElements() {
        if (!(engineSharded() && s.offloadParameters() && !cpu)) {
            return 0;
        }
        long vh = (long) m.vocabSize() * m.hiddenSize();
        return s.residentLayers(m.numLayers()) * ceilDiv(m.layerParameters(), P) + (s.residentEmbedding() ? ceilDiv(vh, P) : 0);
    }

    /** "⌈N/P⌉" with the resident shards' terms taken off. */
    private String partitionFormula() {
        String resident = (s.residentLayers(m.numLayers()) > 0 ? " − K·⌈Lp/P⌉" : "") + (s.residentEmbedding() ? " − ⌈V·h/P⌉" : "");
        return resident.isEmpty() || residentShardElements() == 0 ? "⌈N/P⌉" : "(⌈N/P⌉" + resident + ")";
    }

    /** longtune's ZeRO-3 data parallelism (model/ShardedParameters): P ranks, each holding 1/P of every unit. */
    private boolean engineSharded() { return profile == EngineProfile.LONGTUNE && P > 1; }

    /** Host memory of a CUDA context and its libraries for one more GPU of the same process (the measured 0.85 GiB). */
    static final long CUDA_CONTEXT_HOST = 870L << 20;

    /**
     * The sharded engine's gradients with AdamW on the host: with the shards offloaded, each rank's 16-bit gradient
     * shard is pinned beside its weight shard and the host AdamW reads it in place (no FP32 copy); with the shards
     * on the GPU, the optimizer step unscales each rank's shard into FP32 host tensors (train/Optimizer.apply).
     */
    private void shardedGradients(Breakdown b, Phase phase, MemoryLocation pinnable, long partition, long offloadedShard) {
        if (s.offloadParameters()) {
            b.add(GRADS, pinnable, "compute-precision gradient shards" + (offloadedShard != partition ? " (all but the resident ones)" : ""),
                    G * e * offloadedShard, "G·e·" + partitionFormula() + " = " + G + " × " + e + " × " + count(offloadedShard));
        } else if (phase == Phase.OPTIMIZER) {
            b.add(MemoryCategory.WORKSPACE, "FP32 unscaled gradient shards", G * 4 * partition,
                    "G·4·⌈N/P⌉ = " + G + " × 4 × " + count(partition));
        }
    }

    /**
     * The engine's gradients with the optimizer on the host. With offloaded parameters they accumulate in 16-bit
     * pinned host tensors (model/OffloadedParameters: e·N for the whole run), and the host AdamW reads them there.
     * Resident, they stay on the GPU, and FP32 copies exist in the optimizer step: train/Optimizer.apply unscales
     * every gradient into an FP32 host tensor (4·N), and each copy between a 16-bit tensor on the GPU and the FP32
     * host state passes through a pinned FP32 buffer of that tensor's size (cuda/CudaDevice read/write), at most the
     * largest tensor's.
     */
    private void engineGradients(Breakdown b, Phase phase, MemoryLocation pinnable) {
        if (s.offloadParameters()) {
            long offloaded = N - residentParameters();
            b.add(GRADS, pinnable, "16-bit gradients (accumulated across micro-batches)", e * offloaded,
                    offloaded == N ? "e·N = " + e + " × " + count(N) : "e·(" + offloadedFormula() + ") = " + e + " × " + count(offloaded));
        }
        if (phase == Phase.OPTIMIZER && !s.offloadParameters()) {
            // offloaded parameters: the host AdamW reads the 16-bit gradients and writes the 16-bit weights where they
            // are (kernels/cpu/scaled_gradients.h), so neither copy exists
            b.add(MemoryCategory.WORKSPACE, "FP32 unscaled gradients (optimizer step)", 4 * N, "4·N = 4 × " + count(N));
            if (!cpu) {
                long largest = 0;
                for (ModelConfig.ParameterTensor t : m.parameterTensors()) {
                    largest = Math.max(largest, t.elements());
                }
                b.add(MemoryCategory.WORKSPACE, pinnable, "FP32 staging of the largest tensor (optimizer step)", 4 * largest,
                        "4·max numel = 4 × " + count(largest));
            }
        }
    }

    /**
     * FP32 gradient buffers, one per sub-group. DeepSpeed walks each optimizer parameter group in order,
     * adding each parameter's partition (⌈numel/P⌉) and closing the sub-group once it reaches
     * {@link #SUB_GROUP_ELEMENTS} or the group ends. Hugging Face's Trainer makes two groups: weights with
     * decay, and norm weights and biases without.
     */
    private long fp32GradientBuffers() {
        long total = 0;
        for (boolean decay : new boolean[] {true, false}) {
            long open = 0;
            for (ModelConfig.ParameterTensor t : m.parameterTensors()) {
                boolean noDecay = t.name().endsWith("norm.weight") || t.name().endsWith(".bias");
                if (noDecay == decay) {
                    continue;
                }
                open += ceilDiv(t.elements(), P);
                if (open >= SUB_GROUP_ELEMENTS) {
                    total += pinned(4 * open);
                    open = 0;
                }
            }
            total += open > 0 ? pinned(4 * open) : 0;
        }
        return total;
    }

    /** zero.Init pins each parameter's partition separately; they return to the cache, not to the OS. */
    private long zeroInitCache() {
        long sum = 0;
        for (ModelConfig.ParameterTensor t : m.parameterTensors()) {
            sum += powerOfTwoCeil(e * ceilDiv(t.elements(), P));
        }
        return sum;
    }

    private static long ceilDiv(long a, long b) { return (a + b - 1) / b; }
}
