package dev.longtune.model;

import dev.longtune.config.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The units parameters move in: 0 is the embedding, 1…L the decoder layers, L+1 the head (final norm and LM
 * head; with tied embeddings the head's matrix is the embedding's, which then belongs to both units).
 */
public final class ParameterUnits {
    private final ModelConfig config;

    public ParameterUnits(ModelConfig config) { this.config = config; }

    public int count() { return config.numLayers() + 2; }

    public static int embedding() { return 0; }

    public static int layer(int i) { return i + 1; }

    public int head() { return config.numLayers() + 1; }

    public boolean isLayer(int unit) { return unit >= 1 && unit <= config.numLayers(); }

    /**
     * A parameter's place in a unit-sized slot on the device: the name after "model.layers.N." in a layer; the (V, h)
     * matrix of the embedding and the head share one place (they are never in flight together).
     */
    static String localName(String name) {
        if (name.startsWith("model.layers.")) {
            return name.substring(name.indexOf('.', "model.layers.".length()) + 1);
        }
        return name.equals("model.embed_tokens.weight") || name.equals("lm_head.weight") ? "vocabulary matrix" : name;
    }

    /** The Hugging Face names of a unit's parameters. */
    public List<String> names(int unit) {
        List<String> out = new ArrayList<>();
        if (unit == embedding()) {
            out.add("model.embed_tokens.weight");
        } else if (unit == head()) {
            out.add("model.norm.weight");
            out.add(config.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight");
        } else if (isLayer(unit)) {
            String prefix = "model.layers." + (unit - 1) + ".";
            for (ModelConfig.ParameterTensor p : config.parameterTensors()) {
                if (p.name().startsWith(prefix)) {
                    out.add(p.name());
                }
            }
        } else {
            throw new IllegalArgumentException("unit " + unit + " out of 0.." + (count() - 1));
        }
        return out;
    }
}
