package dev.longtune.train;

import dev.longtune.config.GpuCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;

import dev.longtune.data.Tokenizer;
import dev.longtune.model.Batch;

import java.util.List;
import java.util.OptionalDouble;

/**
 * Model FLOPs utilisation: the FLOPs a training step must do by the model's definition, per second, over the GPU's
 * datasheet peak (dense, no sparsity) in the training precision. Per token: 6 × the parameters that multiply
 * activations (every weight matrix, the LM head included; not the input embedding, a lookup, nor the norm weights)
 * for forward and backward, plus causal attention's QKᵀ and PV: 6·L·(heads·head dim)·T over a T-token sequence
 * (half of the 12·L·H·Q·T of full attention). Recomputation under checkpointing is not counted: MFU measures useful
 * work, so recomputing lowers it. A training step's figure ({@link #ofStep}) counts its real documents: attention
 * within each document, and no padding.
 */
public final class Mfu {
    private Mfu() {}

    /** The model's FLOPs per trained token at a sequence length of {@code context} tokens. */
    public static double flopsPerToken(ModelConfig m, long context) {
        return 6.0 * multiplyingParameters(m) + 6.0 * m.numLayers() * (double) m.queryDim() * context;
    }

    /** Parameters that multiply activations: every weight matrix, the LM head included, not the input embedding. */
    static long multiplyingParameters(ModelConfig m) {
        long multiplying = 0;
        for (ModelConfig.ParameterTensor t : m.parameterTensors()) {
            if (t.shape().length == 2 && !t.name().equals("model.embed_tokens.weight")) {
                multiplying += t.elements();
            }
        }
        if (m.tieWordEmbeddings()) {
            multiplying += (long) m.vocabSize() * m.hiddenSize(); // the head multiplies by the embedding's matrix
        }
        return multiplying;
    }

    /**
     * The useful FLOPs of one step's packed sequences: per document, 6 × the multiplying parameters per token and
     * causal attention within the document (6·L·q·n² for n tokens: attention never crosses a document boundary, so
     * a sequence of short documents does far less of it than one long document). A segment with no target (the
     * padding after the last document) is not useful work and is not counted.
     */
    public static double stepFlops(ModelConfig m, List<Batch> batches) {
        double perToken = 6.0 * multiplyingParameters(m), attention = 6.0 * m.numLayers() * (double) m.queryDim();
        double flops = 0;
        for (Batch b : batches) {
            int[] cu = b.cuSeqlens(), targets = b.targets();
            for (int s = 0; s + 1 < cu.length; s++) {
                boolean trained = false;
                for (int i = cu[s]; i < cu[s + 1] && !trained; i++) {
                    trained = targets[i] != Tokenizer.IGNORE_INDEX;
                }
                if (trained) {
                    double n = cu[s + 1] - cu[s];
                    flops += perToken * n + attention * n * n;
                }
            }
        }
        return flops;
    }

    /** The utilisation of a step over {@code batches} that took {@code seconds} on a GPU of {@code peakTflops}. */
    public static double ofStep(ModelConfig m, List<Batch> batches, double seconds, double peakTflops) {
        return stepFlops(m, batches) / seconds / (peakTflops * 1e12);
    }

    /** The datasheet peak in TFLOP/s of a GPU (as the device reports its name) in a precision; empty when unknown. */
    public static OptionalDouble peakTflops(String gpuName, Precision p) {
        return GpuCatalog.matching(gpuName).map(g -> switch (p) {
            case BF16 -> g.bf16Tflops();
            case FP16 -> g.fp16Tflops();
            default -> 0.0;
        }).filter(t -> t > 0).map(OptionalDouble::of).orElse(OptionalDouble.empty());
    }

    /** The utilisation of a step that trained {@code tokensPerSecond} at {@code context} on a GPU of {@code peakTflops}. */
    public static double of(ModelConfig m, long context, double tokensPerSecond, double peakTflops) {
        return tokensPerSecond * flopsPerToken(m, context) / (peakTflops * 1e12);
    }
}
