package dev.longtune.plan;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.TechniqueSet;
import dev.longtune.ops.FusedLinearCrossEntropy;
import dev.longtune.tensor.MemoryLocation;

import java.util.EnumMap;
import java.util.Map;

import static dev.longtune.plan.Units.count;
import static dev.longtune.tensor.MemoryCategory.ACTIVATIONS;
import static dev.longtune.tensor.MemoryCategory.CHECKPOINTS;
import static dev.longtune.tensor.MemoryCategory.COMM;
import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.LOGITS;
import static dev.longtune.tensor.MemoryCategory.OPTIMIZER;
import static dev.longtune.tensor.MemoryCategory.OTHER;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;
import static dev.longtune.tensor.MemoryCategory.WORKSPACE;

/**
 * Predicts memory per GPU and per node's host, by category and phase, for one training step of a model
 * at a context length under a technique set. Every term is derived from the architecture and from what
 * the engine's code allocates; docs/memory-model.md gives each formula and its source.
 *
 * <p>Symbols used in the formulas: N parameters, Lp parameters of one decoder layer, L layers, h hidden,
 * f MLP width, V vocabulary, e bytes per compute element, T = micro-batch × context tokens per GPU, P
 * data-parallel GPUs in all, G GPUs on this node.
 */
public final class MemoryPlanner {
    private final EngineProfile profile;

    public MemoryPlanner(EngineProfile profile) { this.profile = profile; }

    public MemoryPlan plan(ModelConfig model, NodeProfile node, TechniqueSet stack, long context) {
        if (context <= 0) {
            throw new IllegalArgumentException("context must be a positive number of tokens, was " + context);
        }
        stack.requireValid(node, profile);
        Map<Phase, Breakdown> gpu = new EnumMap<>(Phase.class);
        Map<Phase, Breakdown> host = new EnumMap<>(Phase.class);
        Step step = new Step(model, node, stack, context);
        for (Phase phase : Phase.values()) {
            gpu.put(phase, step.gpu(phase));
            host.put(phase, step.host(phase));
        }
        return new MemoryPlan(model, node, stack, profile, context, gpu, host);
    }

    public EngineProfile profile() { return profile; }

    /** The quantities of one step and the terms built from them. */
    private final class Step {
        final ModelConfig m;
        final NodeProfile node;
        final TechniqueSet s;
        final ActivationModel act;
        final long N, Lp, L, h, V, T, context, microBatch;
        final int e, P, G;

        Step(ModelConfig m, NodeProfile node, TechniqueSet s, long context) {
            this.m = m;
            this.node = node;
            this.s = s;
            ActivationModel a = new ActivationModel(m, s, profile);
            this.act = profile == EngineProfile.LONGTUNE && !node.gpu().isCpu() ? a.withCudaAttentionWorkspace() : a;
            this.N = m.totalParameters();
            this.Lp = m.layerParameters();
            this.L = m.numLayers();
            this.h = m.hiddenSize();
            this.V = m.vocabSize();
            this.e = s.precision().bytes;
            this.G = s.gpusOn(node);
            this.P = G * s.nodes();
            this.context = context;
            this.microBatch = s.microBatch();
            this.T = microBatch * context;
        }

        int optimizerBytesPerParameter() { return s.precision().mixed() ? 12 : 8; }

        boolean zero3() { return s.zeroStage() == 3; }

        /**
         * longtune's engine on one GPU (P = 1), the only setting it runs with offloaded state: no reduce-scatter
         * bucket, gradients stay in the engine's own buffers (resident, or the parameter slots) until they go to
         * the host, and the optimizer step's copies are staged through FP32 (cuda/CudaDevice read/write).
         */
        boolean engineOnOneGpu() { return profile == EngineProfile.LONGTUNE && P == 1; }

        /**
         * longtune's ZeRO-3 data parallelism (model/ShardedParameters): each rank keeps 1/P of every unit's weights and
         * gradients (on the GPU, or offloaded), gathers one unit at a time into whole tensors and reduce-scatters the
         * unit's gradients after its backward through buffers of its size.
         */
        boolean engineSharded() { return profile == EngineProfile.LONGTUNE && P > 1 && zero3(); }

        /**
         * Fixed device slots for the units in use: parameter offload on one GPU (model/OffloadedParameters) and the
         * sharded engine on several (model/ShardedParameters) allocate the same ones.
         */
        boolean parameterSlots() { return engineOnOneGpu() && s.offloadParameters() || engineSharded(); }

        /** The largest parameter tensor (the embedding or LM head, V·h, for the Llama and Qwen models). */
        long largestTensor() {
            long max = 0;
            for (ModelConfig.ParameterTensor t : m.parameterTensors()) {
                max = Math.max(max, t.elements());
            }
            return max;
        }

        // ---------------------------------------------------------------- GPU

        Breakdown gpu(Phase phase) {
            Breakdown b = new Breakdown(MemoryLocation.GPU);
            residentModelStates(b);
            switch (phase) {
                case FORWARD -> forward(b);
                case LOSS -> loss(b);
                case BACKWARD -> backward(b);
                case OPTIMIZER -> unscaledGradients(b);
            }
            if (phase != Phase.OPTIMIZER) {
                communication(b, phase);
                batchInputs(b);
            }
            b.add(WORKSPACE, "cuBLAS workspace", cublasWorkspace(), (cublasWorkspace() >> 20)
                    + " MiB (PyTorch's default per handle: 32 MiB on sm_90, 8 MiB before)");
            return b;
        }

        boolean cpu() { return node.gpu().isCpu(); }

        long cublasWorkspace() { return GpuRuntime.cublasWorkspaceBytes(node.gpu()); }

        /**
         * The engine's embedding/LM head slot (model/OffloadedParameters, ShardedParameters) exists only while the
         * embedding or the head is in flight: for the embedding's forward, from the last layer's forward to the end
         * of the loss, and for the embedding's backward; not while the layers' backward runs.
         */
        boolean vocabularySlotOnDemand() { return parameterSlots(); }

        /** The slot the embedding and the LM head share, with room for the (V, h) matrix and the final norm. */
        void vocabularySlot(Breakdown b) {
            long vocabulary = V * h + h;
            for (var c : new dev.longtune.tensor.MemoryCategory[] {WEIGHTS, GRADS}) {
                String what = c == WEIGHTS ? "weights" : "gradients";
                b.add(c, "embedding/LM head slot (" + what + ")", e * vocabulary,
                        "e·(V·h + h) = " + e + " × (" + V + " × " + h + " + " + h + ")");
            }
        }

        /** Model states that stay on each GPU for the whole step. */
        void residentModelStates(Breakdown b) {
            if (parameterSlots()) {
                // model/OffloadedParameters and ShardedParameters allocate a ring of 2 decoder-layer slots once (one
                // computing, one loading), each with room for a unit's weights AND gradients; the layers that stay
                // resident (one GPU) need none, so fewer than 2 offloaded layers need fewer slots
                long slots = engineSharded() ? Math.min(2, L) : Math.min(2, L - residentLayers()); // a resident shard is still gathered
                for (var c : new dev.longtune.tensor.MemoryCategory[] {WEIGHTS, GRADS}) {
                    String what = c == WEIGHTS ? "weights" : "gradients";
                    if (slots > 0) {
                        b.add(c, "decoder-layer ring, " + slots + " slots (" + what + ")", slots * e * Lp,
                                slots + "·e·Lp = " + slots + " × " + e + " × " + count(Lp));
                    }
                }
            }
            if (residentLayers() > 0) {
                // model/OffloadedParameters: the first K layers' weights and gradients stay on the GPU, and their
                // optimizer state with them (train/Optimizer: the GPU's AdamW updates them); ShardedParameters: this
                // rank's shards of them, ⌈Lp/P⌉ each (Lp/P written as Lp for one GPU)
                long k = residentLayers(), lp = residentLayerElements();
                String per = engineSharded() ? "⌈Lp/P⌉" : "Lp";
                int opt = optimizerBytesPerParameter();
                b.add(WEIGHTS, "resident decoder layers (weights)", k * e * lp, "K·e·" + per + " = " + k + " × " + e + " × " + count(lp));
                b.add(GRADS, "resident decoder layers (gradients)", k * e * lp, "K·e·" + per + " = " + k + " × " + e + " × " + count(lp));
                b.add(OPTIMIZER, "resident decoder layers' optimizer states (FP32 master, m, v)", k * opt * lp,
                        "K·" + opt + "·" + per + " = " + k + " × " + opt + " × " + count(lp));
            }
            if (residentEmbedding()) {
                int opt = optimizerBytesPerParameter();
                long vh = residentEmbeddingElements();
                String per = engineSharded() ? "⌈V·h/P⌉" : "V·h";
                b.add(WEIGHTS, "resident embedding (weights)", e * vh, "e·" + per + " = " + e + " × " + count(vh));
                b.add(GRADS, "resident embedding (gradients)", e * vh, "e·" + per + " = " + e + " × " + count(vh));
                b.add(OPTIMIZER, "resident embedding's optimizer states (FP32 master, m, v)", opt * vh,
                        opt + "·" + per + " = " + opt + " × " + count(vh));
            }
            if (engineSharded()) {
                if (!s.offloadParameters()) {
                    b.add(WEIGHTS, "weight partition", e * N / P, "e·N/P = " + e + " × " + count(N) + " / " + P);
                    b.add(GRADS, "gradient partition", e * N / P, "e·N/P = " + e + " × " + count(N) + " / " + P);
                }
                // the collectives' buffers, allocated once: a layer's chunk per rank (the embedding and LM head go
                // in pieces of that size): all-gather send and receive, reduce-scatter send and receive
                long piece = (Lp + P - 1) / P;
                b.add(COMM, "collective buffers (a layer's chunk per rank)", e * piece * (2L * P + 2), "e·⌈Lp/P⌉·(2P + 2)");
            } else if (parameterSlots()) {
                // the slots above
            } else if (s.offloadParameters()) {
                // all compute-precision weights live on the host; only gathered layers come to the GPU
            } else if (zero3()) {
                b.add(WEIGHTS, "weight partition", e * N / P, "e·N/P = " + e + " × " + count(N) + " / " + P);
            } else {
                b.add(WEIGHTS, "weights", e * N, "e·N = " + e + " × " + count(N));
            }
            if (parameterSlots()) {
                // the gradients are in the slots above, and on the host
            } else if (s.offloadOptimizer() && engineOnOneGpu()) {
                // model/ResidentParameters keeps every gradient on the device; the optimizer reads them from there
                b.add(GRADS, "gradients (resident until the optimizer step)", e * N, "e·N = " + e + " × " + count(N));
            } else if (s.offloadOptimizer()) {
                // gradients are reduced straight into FP32 partitions on the host
            } else if (s.zeroStage() >= 2) {
                b.add(GRADS, "gradient partition", e * N / P, "e·N/P = " + e + " × " + count(N) + " / " + P);
            } else {
                b.add(GRADS, "gradients", e * N, "e·N = " + e + " × " + count(N));
            }
            if (!s.offloadOptimizer()) {
                int k = optimizerBytesPerParameter();
                int parts = s.zeroStage() >= 1 ? P : 1;
                b.add(OPTIMIZER, "optimizer states" + (s.precision().mixed() ? " (FP32 master, m, v)" : " (m, v)"),
                        k * N / parts, k + "·N/" + parts + " = " + k + " × " + count(N) + " / " + parts);
            }
        }

        /** Decoder layers kept on the GPU out of an offloaded model (one GPU), or their shards (ZeRO-3 with offload). */
        long residentLayers() { return residentShardsOrLayers() ? s.residentLayers((int) L) : 0; }

        /** Whether the embedding matrix (its shard with ZeRO-3) stays on the GPU out of an offloaded model. */
        boolean residentEmbedding() { return residentShardsOrLayers() && s.residentEmbedding(); }

        private boolean residentShardsOrLayers() { return (engineOnOneGpu() || engineSharded()) && s.offloadParameters(); }

        /** Elements of one resident layer on this GPU: the whole layer, or rank 0's chunk of it (model/ShardLayout). */
        long residentLayerElements() { return engineSharded() ? (Lp + P - 1) / P : Lp; }

        /** The same for the embedding matrix. */
        long residentEmbeddingElements() { return engineSharded() ? (V * h + P - 1) / P : V * h; }

        /**
         * longtune's optimizer on the CPU unscales the compute-precision gradients into FP32 copies before clipping
         * and AdamW (train/Optimizer.java): 4 bytes per parameter it updates, for the step. On a GPU the state in GPU
         * memory is updated in one pass that reads each 16-bit gradient where it is (Device.adamwScaled): no copies.
         */
        void unscaledGradients(Breakdown b) {
            if (profile == EngineProfile.LONGTUNE && !s.offloadOptimizer() && cpu()) {
                int parts = s.zeroStage() >= 1 ? P : 1;
                b.add(WORKSPACE, "FP32 unscaled gradients", 4 * N / parts, "4·N/" + parts + " = 4 × " + count(N) + " / " + parts);
            } else if (engineOnOneGpu() && s.offloadOptimizer() && !s.offloadParameters() && !cpu()) {
                // the unscaled FP32 gradients live on the host; each resident 16-bit gradient is read (and each new
                // 16-bit weight written) through an FP32 copy on the GPU, one tensor at a time (cuda/CudaDevice
                // read/write). Offloaded parameters need none: their gradients are decoded and their weights written
                // in pinned host memory by the CPU (cuda/PinnedHost, NativeAdamW.stepInto)
                long largest = largestTensor();
                b.add(WORKSPACE, "FP32 staging of the largest tensor (gradient read, weight write)", 4 * largest,
                        "4·max numel = 4 × " + count(largest));
            }
        }

        /**
         * ZeRO-3 working set. DeepSpeed gathers module by module and keeps a parameter until its next use is
         * farther than max_reuse_distance (1e9 elements), so the layer being recomputed and back-propagated
         * stays gathered, plus the prefetch bucket (Hugging Face's "auto": 0.9·h² elements). longtune's
         * engine double-buffers whole layers: the current one and the next, prefetched.
         */
        void gatheredLayers(Breakdown b) {
            if (!zero3() || parameterSlots()) {
                return; // the slots are counted with the resident model states
            }
            if (profile == EngineProfile.HF_DEEPSPEED) {
                b.add(WEIGHTS, "gathered layer", e * Lp, "e·Lp = " + e + " × " + count(Lp));
                long bucket = 9 * h * h / 10;
                b.add(WEIGHTS, "prefetch bucket", e * bucket, "e·0.9·h² = " + e + " × " + count(bucket));
            } else {
                b.add(WEIGHTS, "gathered layers (current + prefetched)", 2L * e * Lp,
                        "2·e·Lp = 2 × " + e + " × " + count(Lp));
            }
        }

        /** Layer inputs held on the GPU. */
        void checkpointsOnGpu(Breakdown b) {
            long one = T * h * e;
            switch (s.checkpointing()) {
                case NONE -> { }
                case DEVICE -> b.add(CHECKPOINTS, "layer inputs on the GPU", L * one,
                        "L·T·h·e = " + L + " × " + count(T) + " × " + h + " × " + e);
                case OFFLOAD -> b.add(CHECKPOINTS, "layer inputs in flight (current + prefetched)", 2 * one,
                        "2·T·h·e = 2 × " + count(T) + " × " + h + " × " + e);
            }
        }

        /** Every layer's saved activations, when nothing is checkpointed. */
        void allLayerActivations(Breakdown b) {
            long perLayer = act.layerSaved(microBatch, context) + T * h * e;
            b.add(ACTIVATIONS, "saved activations of all layers", L * perLayer,
                    "L × (layer saved + input) = " + L + " × " + count(perLayer) + " B");
        }

        void forward(Breakdown b) {
            gatheredLayers(b);
            if (vocabularySlotOnDemand()) {
                vocabularySlot(b); // the head is brought in during the last layer's forward
            }
            if (act.checkpointing() && act.longtuneBackward) {
                checkpointsOnGpu(b);
                if (s.checkpointing() == Checkpointing.OFFLOAD && profile == EngineProfile.LONGTUNE && s.keepAttention()) {
                    // model/LlamaModel copies a layer's checkpoint to the host while the next layer's attention half
                    // computes, and gives its device tensors back before that layer's output is allocated: the layer
                    // before's input takes the output's place among the two inputs in flight, but its kept attention
                    // output and lse are beside this layer's saved tensors
                    long att = T * m.queryDim() * e + 4 * T * m.numHeads();
                    b.add(ACTIVATIONS, "previous layer's attention output and lse, until their copy to the host ends",
                            att, "T·q·e + 4·H·T");
                }
                b.add(ACTIVATIONS, "one layer's forward: its saved tensors and down_proj's output",
                        act.engineForwardTransient(microBatch, context),
                        "layer saved + (T·h·e, or 2·T'·h·e tiled) with T' = " + count(act.mlpTokens(T)));
            } else if (act.checkpointing()) {
                checkpointsOnGpu(b);
                b.add(ACTIVATIONS, "one layer's forward without saving (residual, norm, gate, up, product)",
                        act.forwardTransient(microBatch, context) - act.eagerScoresForward(microBatch, context),
                        "(2·T·h + T'·3f)·e with T' = " + count(act.mlpTokens(T)));
                b.add(WORKSPACE, "eager attention scores being computed",
                        act.eagerScoresForward(microBatch, context), "b·H·s²·(3e+4)");
            } else {
                allLayerActivations(b);
            }
        }

        void loss(Breakdown b) {
            if (vocabularySlotOnDemand()) {
                vocabularySlot(b);
            }
            if (act.checkpointing() && profile == EngineProfile.LONGTUNE && s.checkpointing() == Checkpointing.OFFLOAD) {
                // model/LlamaModel brings the last layer's input back when that layer's backward starts: during
                // the loss every checkpoint is on the host; where the GPU has the room (prefetchCheckpoints) the last
                // layer's stays on the GPU through the loss instead, with its attention output and lse where kept
                if (s.prefetchCheckpoints() || lastLayerKept()) {
                    b.add(CHECKPOINTS, "the last layer's input, kept for its backward", T * h * e, "T·h·e");
                    if (s.keptAttentionLayers((int) L) == L && !lastLayerKept()) {
                        long att = T * m.queryDim() * e + 4 * T * m.numHeads();
                        b.add(ACTIVATIONS, "the last layer's attention output and lse, kept for its backward", att, "T·q·e + 4·H·T");
                    }
                }
                lastLayerSaved(b);
            } else if (act.checkpointing()) {
                checkpointsOnGpu(b);
                lastLayerSaved(b);
            } else {
                allLayerActivations(b);
            }
            if (zero3() && !parameterSlots()) {
                b.add(WEIGHTS, "gathered LM head", e * V * h, "e·V·h = " + e + " × " + V + " × " + h);
            }
            b.add(ACTIVATIONS, "final hidden state and its norm", 2 * T * h * e, "2·T·h·e");
            if (profile == EngineProfile.LONGTUNE) {
                // model/LlamaModel's loss also holds the norm output's gradient and the norm's FP32 inverse RMS
                b.add(ACTIVATIONS, "final norm's output gradient and inverse RMS", T * h * e + 4 * T, "T·h·e + 4·T");
            }
            // the engine on one GPU writes the head's gradient into its slot or its resident gradient
            boolean separateHeadGrad = (zero3() || s.offloadOptimizer()) && !(engineOnOneGpu() && (s.offloadParameters() || s.offloadOptimizer()));
            if (s.uses(LigerOp.FUSED_LINEAR_CROSS_ENTROPY)) {
                long chunk = flceChunkTokens();
                if (cpu()) {
                    // the CPU op keeps FP32 logits and two chunks of FP32 hidden rows (ops/FusedLinearCrossEntropy)
                    b.add(LOGITS, "FP32 logits of one token chunk", chunk * V * 4, "chunk·V·4 with chunk = " + chunk + " tokens");
                    b.add(WORKSPACE, "FP32 hidden rows of the chunk and their gradient", 2 * chunk * h * 4, "2·chunk·h·4");
                } else if (profile == EngineProfile.LONGTUNE) {
                    // the CUDA device: FP32 logits and compute-precision dlogits of one chunk (cuda/CudaDevice)
                    long rows = FusedLinearCrossEntropy.gpuChunkRows(T, V, (int) e);
                    b.add(LOGITS, "FP32 logits and their gradient for one token chunk", rows * V * (4 + e),
                            "chunk·V·(4 + e) with chunk = " + rows + " tokens (≤ 1 GiB)");
                    b.add(WORKSPACE, "FP32 loss per token", T * 4, "T·4");
                } else {
                    b.add(LOGITS, "logits of one token chunk", chunk * V * e, "chunk·V·e with chunk = " + chunk + " tokens");
                }
                b.add(ACTIVATIONS, "gradient of the hidden states (computed in forward)", T * h * e, "T·h·e");
                if (separateHeadGrad && !parameterSlots()) {
                    b.add(GRADS, "LM head gradient (computed in forward)", e * V * h, "e·V·h");
                }
            } else {
                long rows = s.sequenceTile() > 0 ? Math.min(T, s.sequenceTile()) : T;
                b.add(LOGITS, "logits, their FP32 upcast and FP32 log-softmax", rows * V * (e + 8L),
                        count(rows) + " × V × (e + 4 + 4)");
                if (separateHeadGrad) {
                    b.add(GRADS, "LM head gradient", e * V * h, "e·V·h");
                }
            }
        }

        /** The engine keeps the last layer's saved tensors on the GPU from its forward to its backward (keepLastLayer). */
        boolean lastLayerKept() {
            return profile == EngineProfile.LONGTUNE && s.keepLastLayer() && act.checkpointing() && L > 0;
        }

        /**
         * model/LlamaModel with keepLastLayer: the last layer's saved tensors stay through the loss (its backward then
         * uses them, at the same peak as the recompute it skips).
         */
        void lastLayerSaved(Breakdown b) {
            if (lastLayerKept()) {
                long saved = act.layerSaved(microBatch, context);
                b.add(ACTIVATIONS, "the last layer's saved tensors, kept for its backward (not recomputed)", saved,
                        perTokenFormula(saved));
            }
        }

        /**
         * Liger's chunking: {@code chunk = next_pow2(ceil(T / ceil(V / h)))}, so a chunk of logits is about as
         * large as the hidden states. longtune uses the same rule.
         */
        long flceChunkTokens() {
            long factor = (V + h - 1) / h;
            long chunk = Units.powerOfTwoCeil((T + factor - 1) / factor);
            if (cpu()) {
                // the CPU device amortises its GEMM copies over at least 256 tokens (device/CpuDevice.cpuChunk)
                chunk = Math.min(T, Math.max(256, chunk));
            }
            // a tiled loss (ALST's) takes at most a tile's tokens; longtune's fused loss chunks by its own rule already
            boolean tiledLoss = s.sequenceTile() > 0 && profile != EngineProfile.LONGTUNE;
            return tiledLoss ? Math.min(chunk, Units.powerOfTwoCeil(s.sequenceTile())) : chunk;
        }

        /**
         * The worst moment of a layer's backward. The embedding's backward (the embedding/head slot and the gradient
         * of the embeddings' output) never exceeds the loss phase, which holds the same slot and more, in total or in
         * any category, so it needs no moment of its own.
         */
        void backward(Breakdown b) {
            layerBackward(b);
        }

        void layerBackward(Breakdown b) {
            gatheredLayers(b);
            if ((zero3() || s.offloadOptimizer()) && !(engineOnOneGpu() && (s.offloadParameters() || s.offloadOptimizer()))
                    && !parameterSlots()) {
                b.add(GRADS, "one layer's gradients before reduce-scatter", e * Lp, "e·Lp = " + e + " × " + count(Lp));
            }
            ActivationModel.BackwardMoment worst = act.backwardPeak(microBatch, context);
            if (act.checkpointing() && profile == EngineProfile.LONGTUNE && s.checkpointing() == Checkpointing.OFFLOAD) {
                // model/LlamaModel brings each layer's input back as its backward starts (in forward, a layer's input
                // and its output are both on the GPU: the two in flight)
                b.add(CHECKPOINTS, "the layer's input, brought back", T * h * e, "T·h·e");
                if (s.prefetchCheckpoints()) {
                    // and the layer below's, brought back ahead while this one computes (with its attention output and lse)
                    b.add(CHECKPOINTS, "the layer below's input, brought back ahead", T * h * e, "T·h·e");
                }
                if (s.prefetchCheckpoints() && s.keepAttention()) {
                    long att = T * m.queryDim() * e + 4 * T * m.numHeads();
                    b.add(ACTIVATIONS, "the layer below's attention output and lse, brought back ahead", att, "T·q·e + 4·H·T");
                }
                b.add(ACTIVATIONS, "recomputed layer's saved tensors (at its " + worst.where() + " backward)",
                        worst.saved(), perTokenFormula(worst.saved()));
            } else if (act.checkpointing()) {
                checkpointsOnGpu(b);
                b.add(ACTIVATIONS, "recomputed layer's saved tensors (at its " + worst.where() + " backward)",
                        worst.saved(), perTokenFormula(worst.saved()));
            } else {
                // every other layer still holds all it saved, plus this layer's input and its worst moment
                long others = (L - 1) * (act.layerSaved(microBatch, context) + T * h * e);
                b.add(ACTIVATIONS, "saved tensors of the other layers", others,
                        "(L−1) × (layer saved + input) = " + (L - 1) + " × " + count(others / Math.max(1, L - 1)));
                b.add(ACTIVATIONS, "this layer's input and saved tensors (at its " + worst.where() + " backward)",
                        worst.saved() + T * h * e, perTokenFormula(worst.saved() + T * h * e));
            }
            b.add(ACTIVATIONS, "gradients at the worst moment of the layer's backward", worst.gradients(),
                    perTokenFormula(worst.gradients()));
            if (worst.workspace() > 0) {
                b.add(WORKSPACE, "attention backward's FP32 dQ accumulator and row deltas", worst.workspace(),
                        "T·(q + heads)·4 = " + count(T) + " × (" + m.queryDim() + " + " + m.numHeads() + ") × 4");
            }
        }

        private String perTokenFormula(long bytes) {
            return String.format(java.util.Locale.ROOT, "%,.1f B/token × %s tokens", bytes / (double) T, count(T));
        }

        /**
         * Hugging Face's LlamaModel keeps the batch (input ids, labels, position ids: int64) and the RoPE cos and
         * sin it computes once per forward ((b, s, d) each, cast to the compute dtype) for the whole step: every
         * checkpointed layer saves the same cos/sin as an input. longtune's kernels compute RoPE angles in place.
         */
        void batchInputs(Breakdown b) {
            if (profile == EngineProfile.HF_DEEPSPEED && !cpu()) {
                long d = m.headDim();
                b.add(OTHER, "batch ids (input, label, position; int64) and RoPE cos/sin", T * (3 * 8 + 2 * d * e),
                        "T·(3·8 + 2·d·e) = " + count(T) + " × (24 + 2 × " + d + " × " + e + ")");
            }
        }

        void communication(Breakdown b, Phase phase) {
            if (engineSharded()) {
                return; // its buffers are allocated once (residentModelStates)
            }
            if ((P > 1 && s.zeroStage() >= 1 || s.offloadOptimizer()) && !engineOnOneGpu()) {
                // (the engine on one GPU has no bucket: gradients go from its buffers straight to the host)
                // Hugging Face sets reduce_bucket_size = h² for ZeRO ("auto")
                b.add(COMM, "reduce-scatter bucket", h * h * e, "h²·e");
            }
        }

        Breakdown host(Phase phase) {
            return new HostMemory(profile, m, s, G, P, context, cpu()).at(phase);
        }
    }
}
