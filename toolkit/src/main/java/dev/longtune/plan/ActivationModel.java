package dev.longtune.plan;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.TechniqueSet;

/**
 * What one decoder layer keeps for backward, per token, counted tensor by tensor from the layer's code
 * (Hugging Face {@code LlamaDecoderLayer} for {@code hf-deepspeed}, longtune's own layer for
 * {@code longtune}); docs/memory-model.md walks through the list. Sizes are in elements of the compute
 * dtype unless the name says bytes.
 */
final class ActivationModel {
    final ModelConfig m;
    final TechniqueSet s;
    final EngineProfile profile;
    final int e;
    final long h, f, q, kv;

    ActivationModel(ModelConfig m, TechniqueSet s, EngineProfile profile) {
        this.m = m;
        this.s = s;
        this.profile = profile;
        this.e = s.precision().bytes;
        this.h = m.hiddenSize();
        this.f = m.intermediateSize();
        this.q = m.queryDim();
        this.kv = m.kvDim();
    }

    /**
     * Hugging Face expands K and V to every query head ({@code repeat_kv}) before eager and SDPA
     * attention; FlashAttention-2 and longtune's kernels read the shared KV heads directly.
     */
    boolean repeatsKv() {
        return profile == EngineProfile.HF_DEEPSPEED && s.attention() != Attention.FLASH_ATTENTION_2;
    }

    /**
     * Eager and SDPA return (b, heads, s, d); Hugging Face transposes and makes it contiguous for o_proj,
     * a second copy of the output. FlashAttention-2 returns (b, s, heads, d) already.
     */
    boolean copiesAttentionOutput() {
        return profile == EngineProfile.HF_DEEPSPEED && s.attention() != Attention.FLASH_ATTENTION_2;
    }

    /** Tensors saved for backward by the attention half, excluding the layer input (elements/token). */
    long attentionSaved() {
        long norm = h;                                  // input_layernorm output, saved by q/k/v projections
        long queries = q;                               // rotated queries, saved by attention
        long keysValues = repeatsKv() ? 2 * q : 2 * kv; // rotated keys and values (expanded under repeat_kv)
        long output = copiesAttentionOutput() ? 2 * q : q; // attention output (+ contiguous copy for o_proj)
        long residual = h;                              // h1 = x + o_proj(...), saved by post-attention norm
        return norm + queries + keysValues + output + residual;
    }

    /** Extra bytes/token an unfused RMSNorm saves: its FP32 upcast input and FP32 normalised value. */
    long unfusedNormBytesPerNorm() { return s.uses(LigerOp.RMS_NORM) ? 0 : 2 * 4 * h; }

    /** MLP half: post-attention norm output plus the f-wide tensors (elements/token, untiled). */
    long mlpWideSaved() {
        // gate and up outputs plus their product; unfused SwiGLU also keeps silu(gate).
        return (s.uses(LigerOp.SWIGLU) ? 3 : 4) * f;
    }

    /** Gradients alive at the worst moment of one layer's backward: dh, d(act) and, unfused, d(gate), d(up). */
    long backwardTransient() {
        return h + f + (s.uses(LigerOp.SWIGLU) ? 0 : 2 * f);
    }

    /** Small per-token FP32 values: softmax log-sum-exp per head and two RMSNorm inverse RMS values. */
    long smallBytesPerToken() {
        long lse = s.attention() == Attention.EAGER ? 0 : 4L * m.numHeads();
        return lse + 2 * 4;
    }

    /** Bytes eager attention saves per layer: FP32 softmax and its compute-dtype cast, b·heads·s² each. */
    long eagerScoresBytes(long microBatch, long context) {
        if (s.attention() != Attention.EAGER) {
            return 0;
        }
        return microBatch * m.numHeads() * context * context * (4L + e);
    }

    /** Bytes eager attention needs while computing one layer: raw and masked scores, FP32 softmax, cast. */
    long eagerScoresForwardBytes(long microBatch, long context) {
        if (s.attention() != Attention.EAGER) {
            return 0;
        }
        return microBatch * m.numHeads() * context * context * (2L * e + 4 + e);
    }

    /** Tokens whose f-wide MLP tensors exist at once: all of them, or one tile. */
    long mlpTokens(long tokens) {
        return s.sequenceTile() > 0 ? Math.min(tokens, s.sequenceTile()) : tokens;
    }

    /** Bytes one layer saves for backward (excluding its input), at {@code tokens} = b·s tokens. */
    long layerSavedBytes(long microBatch, long context) {
        long tokens = microBatch * context;
        long perToken = (attentionSaved() + h) * e + 2 * unfusedNormBytesPerNorm() + smallBytesPerToken();
        long mlp = mlpTokens(tokens) * mlpWideSaved() * e;
        return tokens * perToken + mlp + eagerScoresBytes(microBatch, context);
    }

    boolean checkpointing() { return s.checkpointing() != Checkpointing.NONE; }
}
