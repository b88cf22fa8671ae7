package dev.longtune.plan;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.TechniqueSet;

/**
 * What one decoder layer keeps for backward, counted tensor by tensor from the layer's code (Hugging Face
 * {@code LlamaDecoderLayer} for {@code hf-deepspeed}, longtune's own layer for {@code longtune}).
 * docs/memory-model.md walks through the list; bench/results/hf-layer-memory-h200.json checks it against
 * PyTorch on an H200 (a test reads it). Sizes are bytes unless a name says elements.
 *
 * <p>A layer's backward has two worst moments: inside the MLP's backward, when everything the layer saved
 * is still held; and inside attention's backward, when the MLP half is already freed but attention's own
 * gradients (for eager attention, the b·heads·s² score gradients) are being made. The peak is the larger.
 */
final class ActivationModel {
    final ModelConfig m;
    final TechniqueSet s;
    final int e;
    final long h, f, q, kv, heads;
    /** Whether K and V are expanded to every query head before attention. */
    final boolean repeatKv;
    /**
     * longtune's layer backward (model/LlamaModel) allocates its gradients alongside the saved tensors and
     * frees the saved ones only when the layer's backward ends, unlike Hugging Face with Liger, which
     * releases tensors as autograd goes and writes SwiGLU's gradients in place.
     */
    final boolean longtuneBackward;

    ActivationModel(ModelConfig m, TechniqueSet s, EngineProfile profile) {
        // Hugging Face expands K and V ({@code repeat_kv}) for eager attention always and for SDPA up to
        // transformers 4.53, the versions of the study's time; FlashAttention-2 and longtune's kernels read
        // the shared KV heads directly.
        this(m, s, profile == EngineProfile.HF_DEEPSPEED && s.attention() != Attention.FLASH_ATTENTION_2,
                profile == EngineProfile.LONGTUNE);
    }

    ActivationModel(ModelConfig m, TechniqueSet s, boolean repeatKv) { this(m, s, repeatKv, false); }

    ActivationModel(ModelConfig m, TechniqueSet s, boolean repeatKv, boolean longtuneBackward) {
        this.m = m;
        this.s = s;
        this.e = s.precision().bytes;
        this.h = m.hiddenSize();
        this.f = m.intermediateSize();
        this.q = m.queryDim();
        this.kv = m.kvDim();
        this.heads = m.numHeads();
        this.repeatKv = repeatKv;
        this.longtuneBackward = longtuneBackward;
    }

    boolean checkpointing() { return s.checkpointing() != Checkpointing.NONE; }

    /** Tokens whose MLP-wide tensors exist at once: all of them, or one sequence tile. */
    long mlpTokens(long tokens) {
        return s.sequenceTile() > 0 ? Math.min(tokens, s.sequenceTile()) : tokens;
    }

    /** Extra bytes/token an unfused RMSNorm saves: its FP32 upcast input (4h) and its normalised value cast back (e·h). */
    long unfusedNormBytes() { return s.uses(LigerOp.RMS_NORM) ? 0 : (4 + e) * h; }

    /**
     * Attention half, bytes/token: input_layernorm output (saved by q/k/v projections), rotated queries,
     * keys and values (expanded under repeat_kv), the attention output in the layout o_proj reads (saved
     * once: eager's (b, heads, s, d) result is only transposed into a contiguous copy), the unfused norm's
     * extras, and FP32 scalars per token (the norm's inverse RMS and, for SDPA/FlashAttention, one
     * log-sum-exp per head). The layer input itself is the checkpoint, counted apart.
     */
    long attentionSavedPerToken() {
        long keysValues = repeatKv ? 2 * q : 2 * kv;
        long lse = s.attention() == Attention.EAGER ? 0 : 4 * heads;
        return (h + q + keysValues + q) * e + unfusedNormBytes() + 4 + lse;
    }

    /**
     * MLP half, bytes/token outside the wide tensors: the post-attention norm's output (saved by gate/up)
     * and inverse RMS, and what the norm keeps of its input h1 = x + attention: Liger's norm saves h1
     * itself, the unfused one its FP32 upcast (in {@link #unfusedNormBytes}).
     */
    long mlpNarrowSavedPerToken() {
        long residual = s.uses(LigerOp.RMS_NORM) ? h * e : 0;
        return residual + h * e + unfusedNormBytes() + 4;
    }

    /** Wide MLP tensors, bytes/token: gate, up and their product; unfused SwiGLU also keeps silu(gate). */
    long mlpWideSavedPerToken() { return (s.uses(LigerOp.SWIGLU) ? 3 : 4) * f * e; }

    /** Bytes eager attention saves per layer: the FP32 softmax and its cast to the compute dtype. */
    long eagerScoresSaved(long microBatch, long context) {
        return s.attention() == Attention.EAGER ? microBatch * heads * context * context * (4L + e) : 0;
    }

    /** Score gradients in eager attention's backward: d(probabilities), its FP32 cast, d(softmax input). */
    long eagerScoresBackward(long microBatch, long context) {
        return s.attention() == Attention.EAGER ? microBatch * heads * context * context * (e + 4L + 4L) : 0;
    }

    /** Scores in eager attention's forward: raw scores, scaled, FP32 softmax, cast (peak of the sequence). */
    long eagerScoresForward(long microBatch, long context) {
        return s.attention() == Attention.EAGER ? microBatch * heads * context * context * (2L * e + 4 + e) : 0;
    }

    /** Everything one layer saves for backward, excluding its input (the checkpoint). */
    long layerSaved(long microBatch, long context) {
        long tokens = microBatch * context;
        return tokens * (attentionSavedPerToken() + mlpNarrowSavedPerToken())
                + mlpTokens(tokens) * mlpWideSavedPerToken() + eagerScoresSaved(microBatch, context);
    }

    /**
     * Gradients alive at the MLP moment beyond the saved tensors: the incoming dh and d(product) from
     * down_proj; unfused SwiGLU then makes d(silu) and d(up) while d(product) is still held, but the saved
     * product is freed by then, so two wide gradients net. Liger's SwiGLU writes its gradients into the
     * saved gate/up buffers.
     */
    long mlpMomentGradients(long tokens) {
        if (longtuneBackward && mlpTokens(tokens) < tokens) {
            // tiled (model/LlamaModel's mlpBackwardTiled): incoming dh, the layer's dh1 and d(n2) for every token;
            // per tile the rows of n2 and dh copied out, and d(act), d(gate), d(up) at once
            return tokens * 3 * h * e + mlpTokens(tokens) * (3 * f + 2 * h) * e;
        }
        if (longtuneBackward) {
            // incoming dh and the layer's dh1, then d(act), d(gate), d(up) all at once
            return tokens * 2 * h * e + tokens * 3 * f * e;
        }
        long wide = (s.uses(LigerOp.SWIGLU) ? 1 : 2) * f * e;
        return tokens * h * e + mlpTokens(tokens) * wide;
    }

    /**
     * The worst moment of one layer's backward: what is still saved, what gradients are alive, and the kernels'
     * scratch (the CUDA attention backward's FP32 dQ accumulator and row deltas).
     */
    record BackwardMoment(String where, long saved, long gradients, long workspace) {
        long total() { return saved + gradients + workspace; }
    }

    /**
     * Bytes per token the attention backward's kernels hold beside the gradients: longtune's CUDA kernels keep an FP32
     * dQ accumulator and FP32 row deltas, T·(q + heads)·4 (cuda/CudaAttention); 0 elsewhere (the CPU engine, and
     * Hugging Face's kernels, whose scratch the measured calibration already covers).
     */
    private long attentionWorkspacePerToken;

    ActivationModel withCudaAttentionWorkspace() {
        attentionWorkspacePerToken = (q + heads) * 4;
        return this;
    }

    BackwardMoment mlpMoment(long microBatch, long context) {
        return new BackwardMoment("MLP", layerSaved(microBatch, context), mlpMomentGradients(microBatch * context), 0);
    }

    /**
     * The attention moment: the attention half still saved, the incoming gradient, and either eager
     * attention's score gradients or the q/k/v gradients being produced, whichever is larger.
     */
    BackwardMoment attentionMoment(long microBatch, long context) {
        long tokens = microBatch * context;
        if (longtuneBackward) {
            // the whole layer is still saved; dh, dh1, d(att), dq, dk, dv are alive
            return new BackwardMoment("attention", layerSaved(microBatch, context),
                    tokens * (2 * h + 2 * q + 2 * kv) * e + eagerScoresBackward(microBatch, context),
                    tokens * attentionWorkspacePerToken);
        }
        long qkvGradients = tokens * (q + (repeatKv ? 2 * q : 2 * kv)) * e;
        return new BackwardMoment("attention", tokens * attentionSavedPerToken() + eagerScoresSaved(microBatch, context),
                tokens * h * e + Math.max(eagerScoresBackward(microBatch, context), qkvGradients), 0);
    }

    /** The larger of the two moments (excluding the layer's input). */
    BackwardMoment backwardPeak(long microBatch, long context) {
        BackwardMoment mlp = mlpMoment(microBatch, context), attention = attentionMoment(microBatch, context);
        return attention.total() > mlp.total() ? attention : mlp;
    }

    /**
     * longtune's layer forward under checkpointing (model/LlamaModel.layerForward), beyond its input and its output
     * (both checkpoints): every tensor the layer saves, allocated up front, and down_proj's result (T·h·e; one tile's
     * rows of n2 and of down_proj when the MLP is tiled).
     */
    long engineForwardTransient(long microBatch, long context) {
        long tokens = microBatch * context, rows = mlpTokens(tokens);
        return layerSaved(microBatch, context) + (rows < tokens ? 2 * rows * h * e : tokens * h * e);
    }

    /** One layer's forward under no_grad (checkpointing): residual, norm output, gate, up and product. */
    long forwardTransient(long microBatch, long context) {
        long tokens = microBatch * context;
        return 2 * tokens * h * e + mlpTokens(tokens) * 3 * f * e + eagerScoresForward(microBatch, context);
    }
}
