package dev.longtune.io;

import dev.longtune.config.ModelConfig;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The shape of every parameter tensor a {@link ModelConfig} calls for, as a Hugging Face checkpoint stores it
 * ({@link ModelConfig#parameterTensors()}: PyTorch's [out, in] for Linear weights).
 */
public final class ParameterShapes {

    private ParameterShapes() {}

    /** Name to shape, in the order of {@link ModelConfig#parameterTensors()}. */
    public static Map<String, long[]> of(ModelConfig config) {
        Map<String, long[]> out = new LinkedHashMap<>();
        for (ModelConfig.ParameterTensor p : config.parameterTensors()) {
            out.put(p.name(), p.shape().clone());
        }
        return Collections.unmodifiableMap(out);
    }
}
