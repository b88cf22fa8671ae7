package dev.longtune.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The architecture of a decoder-only transformer as Hugging Face describes it in {@code config.json}
 * (Llama 3.x and Qwen2/2.5), with exact parameter counts.
 *
 * <p>Parameter counts follow the modules of {@code LlamaForCausalLM} / {@code Qwen2ForCausalLM}: embedding
 * (V·h), per layer q/k/v/o projections (+ biases: Llama's {@code attention_bias} puts one on all four,
 * Qwen2 always has q/k/v biases and none on o), gate/up/down projections (+ {@code mlp_bias}), two RMSNorm
 * weights, then the final norm and the LM head (absent when embeddings are tied).
 */
public record ModelConfig(
        String name,
        String modelType,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vocabSize,
        boolean tieWordEmbeddings,
        boolean qkvBias,
        boolean outputProjectionBias,
        boolean mlpBias,
        int maxPositionEmbeddings,
        double ropeTheta,
        double rmsNormEps,
        RopeScaling ropeScaling) {

    /** Llama 3 frequency scaling of RoPE ({@code rope_scaling} with {@code rope_type: llama3}). */
    public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {}

    /** The same architecture with {@code layers} decoder layers (benchmarks time a 2-layer 8B slice). */
    public ModelConfig withLayers(int layers) {
        return new ModelConfig(name + "-" + layers + "-layers", modelType, hiddenSize, intermediateSize, layers, numHeads,
                numKvHeads, headDim, vocabSize, tieWordEmbeddings, qkvBias, outputProjectionBias, mlpBias,
                maxPositionEmbeddings, ropeTheta, rmsNormEps, ropeScaling);
    }

    private static final List<String> SUPPORTED_TYPES = List.of("llama", "qwen2");

    public ModelConfig {
        requirePositive(name, "hidden_size", hiddenSize);
        requirePositive(name, "intermediate_size", intermediateSize);
        requirePositive(name, "num_hidden_layers", numLayers);
        requirePositive(name, "num_attention_heads", numHeads);
        requirePositive(name, "num_key_value_heads", numKvHeads);
        requirePositive(name, "head_dim", headDim);
        requirePositive(name, "vocab_size", vocabSize);
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException(name + ": num_attention_heads (" + numHeads
                    + ") must be a multiple of num_key_value_heads (" + numKvHeads + ")");
        }
    }

    /** Reads a Hugging Face {@code config.json}; {@code name} labels the model in tables and errors. */
    public static ModelConfig read(Path configJson) throws IOException {
        try (InputStream in = Files.newInputStream(configJson)) {
            String name = configJson.getParent() != null && configJson.getFileName().toString().equals("config.json")
                    ? configJson.getParent().getFileName().toString()
                    : configJson.getFileName().toString().replaceFirst("\\.json$", "");
            return parse(name, in, configJson.toString());
        }
    }

    public static ModelConfig parse(String name, InputStream json, String source) throws IOException {
        JsonNode root = new ObjectMapper().readTree(json);
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(source + ": not a JSON object");
        }
        String type = text(root, "model_type", source);
        if (!SUPPORTED_TYPES.contains(type)) {
            throw new IllegalArgumentException(source + ": model_type '" + type + "' is not supported; supported: "
                    + SUPPORTED_TYPES);
        }
        int hidden = integer(root, "hidden_size", source);
        int heads = integer(root, "num_attention_heads", source);
        int kvHeads = root.has("num_key_value_heads") ? integer(root, "num_key_value_heads", source) : heads;
        int headDim = root.hasNonNull("head_dim") ? integer(root, "head_dim", source) : hidden / heads;
        boolean qwen = type.equals("qwen2");
        boolean attentionBias = root.path("attention_bias").asBoolean(false);
        return new ModelConfig(name, type, hidden,
                integer(root, "intermediate_size", source),
                integer(root, "num_hidden_layers", source),
                heads, kvHeads, headDim,
                integer(root, "vocab_size", source),
                root.path("tie_word_embeddings").asBoolean(false),
                qwen || attentionBias,
                !qwen && attentionBias,
                root.path("mlp_bias").asBoolean(false),
                root.path("max_position_embeddings").asInt(0),
                root.path("rope_theta").asDouble(10000.0),
                root.path("rms_norm_eps").asDouble(1e-6),
                ropeScaling(root.path("rope_scaling"), source));
    }

    private static RopeScaling ropeScaling(JsonNode node, String source) {
        if (node == null || node.isMissingNode() || node.isNull()) {
            return null;
        }
        String type = node.path("rope_type").asText(node.path("type").asText(""));
        if (!type.equals("llama3")) {
            throw new IllegalArgumentException(source + ": rope_scaling type '" + type
                    + "' is not supported; supported: llama3 (or no rope_scaling)");
        }
        return new RopeScaling(node.path("factor").asDouble(), node.path("low_freq_factor").asDouble(),
                node.path("high_freq_factor").asDouble(), node.path("original_max_position_embeddings").asInt());
    }

    private static String text(JsonNode root, String field, String source) {
        JsonNode n = root.get(field);
        if (n == null || !n.isTextual()) {
            throw new IllegalArgumentException(source + ": missing text field '" + field + "'");
        }
        return n.asText();
    }

    private static int integer(JsonNode root, String field, String source) {
        JsonNode n = root.get(field);
        if (n == null || !n.canConvertToInt()) {
            throw new IllegalArgumentException(source + ": missing integer field '" + field + "'");
        }
        return n.asInt();
    }

    private static void requirePositive(String name, String field, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + ": " + field + " must be positive, was " + value);
        }
    }

    /** This config as Hugging Face writes {@code config.json}, for checkpoints the trainer saves. */
    public java.util.Map<String, Object> toHfJson() {
        java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("architectures", List.of(modelType.equals("qwen2") ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
        m.put("model_type", modelType);
        m.put("hidden_size", hiddenSize);
        m.put("intermediate_size", intermediateSize);
        m.put("num_hidden_layers", numLayers);
        m.put("num_attention_heads", numHeads);
        m.put("num_key_value_heads", numKvHeads);
        m.put("head_dim", headDim);
        m.put("vocab_size", vocabSize);
        m.put("tie_word_embeddings", tieWordEmbeddings);
        if (!modelType.equals("qwen2")) {
            m.put("attention_bias", qkvBias);
            m.put("mlp_bias", mlpBias);
        }
        m.put("max_position_embeddings", maxPositionEmbeddings);
        m.put("rope_theta", ropeTheta);
        m.put("rms_norm_eps", rmsNormEps);
        if (ropeScaling != null) {
            java.util.Map<String, Object> rs = new java.util.LinkedHashMap<>();
            rs.put("factor", ropeScaling.factor());
            rs.put("low_freq_factor", ropeScaling.lowFreqFactor());
            rs.put("high_freq_factor", ropeScaling.highFreqFactor());
            rs.put("original_max_position_embeddings", ropeScaling.originalMaxPositions());
            rs.put("rope_type", "llama3");
            m.put("rope_scaling", rs);
        }
        m.put("hidden_act", "silu");
        return m;
    }

    /** Query width: heads × head dim (equals hidden size for every shipped model). */
    public long queryDim() { return (long) numHeads * headDim; }

    /** Key/value width: KV heads × head dim. */
    public long kvDim() { return (long) numKvHeads * headDim; }

    public long embeddingParameters() { return (long) vocabSize * hiddenSize; }

    public long lmHeadParameters() { return tieWordEmbeddings ? 0 : embeddingParameters(); }

    public long attentionParameters() {
        long weights = hiddenSize * queryDim() + 2 * hiddenSize * kvDim() + queryDim() * hiddenSize;
        long biases = (qkvBias ? queryDim() + 2 * kvDim() : 0) + (outputProjectionBias ? hiddenSize : 0);
        return weights + biases;
    }

    public long mlpParameters() {
        return 3L * hiddenSize * intermediateSize + (mlpBias ? 2L * intermediateSize + hiddenSize : 0);
    }

    /** One decoder layer: attention, MLP and its two RMSNorm weights. */
    public long layerParameters() { return attentionParameters() + mlpParameters() + 2L * hiddenSize; }

    public long totalParameters() {
        return embeddingParameters() + numLayers * layerParameters() + hiddenSize + lmHeadParameters();
    }

    /**
     * The largest single module's own parameters, as DeepSpeed counts it for ZeRO-3 estimates
     * ({@code max(sum(p.numel() for p in m.parameters(recurse=False)))}): the embedding or LM head for
     * every shipped model, otherwise the largest MLP projection.
     */
    public long largestModuleParameters() {
        long projection = (long) hiddenSize * intermediateSize + (mlpBias ? intermediateSize : 0);
        return Math.max(embeddingParameters(), projection);
    }

    /**
     * One named parameter tensor, Hugging Face naming, with its shape as PyTorch stores it: Linear weights
     * (out, in), biases and norms (n), embedding and LM head (V, h).
     */
    public record ParameterTensor(String name, long[] shape) {
        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        public int[] intShape() {
            int[] s = new int[shape.length];
            for (int i = 0; i < s.length; i++) {
                s[i] = Math.toIntExact(shape[i]);
            }
            return s;
        }
    }

    /** Every parameter tensor of the causal LM in Hugging Face's order ({@code named_parameters()}) and naming. */
    public List<ParameterTensor> parameterTensors() {
        List<ParameterTensor> out = new ArrayList<>();
        long h = hiddenSize, f = intermediateSize;
        long[] table = {vocabSize, h};
        out.add(new ParameterTensor("model.embed_tokens.weight", table));
        for (int i = 0; i < numLayers; i++) {
            String p = "model.layers." + i + ".";
            // the order of named_parameters(): modules as LlamaDecoderLayer.__init__ creates them
            addLinear(out, p + "self_attn.q_proj", h, queryDim(), qkvBias);
            addLinear(out, p + "self_attn.k_proj", h, kvDim(), qkvBias);
            addLinear(out, p + "self_attn.v_proj", h, kvDim(), qkvBias);
            addLinear(out, p + "self_attn.o_proj", queryDim(), h, outputProjectionBias);
            addLinear(out, p + "mlp.gate_proj", h, f, mlpBias);
            addLinear(out, p + "mlp.up_proj", h, f, mlpBias);
            addLinear(out, p + "mlp.down_proj", f, h, mlpBias);
            out.add(new ParameterTensor(p + "input_layernorm.weight", new long[] {h}));
            out.add(new ParameterTensor(p + "post_attention_layernorm.weight", new long[] {h}));
        }
        out.add(new ParameterTensor("model.norm.weight", new long[] {h}));
        if (!tieWordEmbeddings) {
            out.add(new ParameterTensor("lm_head.weight", table));
        }
        return out;
    }

    private static void addLinear(List<ParameterTensor> out, String name, long in, long outDim, boolean bias) {
        out.add(new ParameterTensor(name + ".weight", new long[] {outDim, in}));
        if (bias) {
            out.add(new ParameterTensor(name + ".bias", new long[] {outDim}));
        }
    }

    /** Query heads per KV head (GQA group size). */
    public int queryGroups() { return numHeads / numKvHeads; }
}
