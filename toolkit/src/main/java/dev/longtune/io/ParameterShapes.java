package dev.longtune.io;

import dev.longtune.config.ModelConfig;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The shape of every parameter tensor a {@link ModelConfig} calls for, as a Hugging Face checkpoint stores it.
 * PyTorch's {@code nn.Linear} keeps its weight as [out, in]: q_proj [q, h], k_proj and v_proj [kv, h],
 * o_proj [h, q], gate_proj and up_proj [f, h], down_proj [h, f]; biases [out]; RMSNorm weights [h];
 * embed_tokens and lm_head [V, h].
 */
public final class ParameterShapes {

    private ParameterShapes() {}

    /** Name to shape, in the order of {@link ModelConfig#parameterTensors()}. */
    public static Map<String, long[]> of(ModelConfig config) {
        Map<String, long[]> out = new LinkedHashMap<>();
        for (ModelConfig.ParameterTensor p : config.parameterTensors()) {
            long[] shape = shape(config, p.name());
            if (Shapes.elementCount(shape) != p.elements()) {
                throw new IllegalStateException(config.name() + ": shape " + Shapes.format(shape) + " of '" + p.name()
                        + "' disagrees with the config's count of " + p.elements() + " elements");
            }
            out.put(p.name(), shape);
        }
        return Collections.unmodifiableMap(out);
    }

    static long[] shape(ModelConfig c, String name) {
        long h = c.hiddenSize(), f = c.intermediateSize(), q = c.queryDim(), kv = c.kvDim(), v = c.vocabSize();
        String module = name.substring(0, name.lastIndexOf('.'));
        boolean bias = name.endsWith(".bias");
        String leaf = module.substring(module.lastIndexOf('.') + 1);
        long[] linear = switch (leaf) {
            case "q_proj" -> new long[] {q, h};
            case "k_proj", "v_proj" -> new long[] {kv, h};
            case "o_proj" -> new long[] {h, q};
            case "gate_proj", "up_proj" -> new long[] {f, h};
            case "down_proj" -> new long[] {h, f};
            default -> null;
        };
        if (linear != null) {
            return bias ? new long[] {linear[0]} : linear;
        }
        return switch (leaf) {
            case "embed_tokens", "lm_head" -> new long[] {v, h};
            case "input_layernorm", "post_attention_layernorm", "norm" -> new long[] {h};
            default -> throw new IllegalStateException(c.name() + ": no known shape for parameter '" + name + "'");
        };
    }
}
