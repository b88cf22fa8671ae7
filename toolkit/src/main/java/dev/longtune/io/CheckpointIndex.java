package dev.longtune.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code model.safetensors.index.json} of a sharded Hugging Face checkpoint:
 * {@code {"metadata": {"total_size": bytes}, "weight_map": {tensor name: shard file name}}}.
 *
 * @param totalSize bytes of tensor data over all shards, or -1 when the index does not say
 * @param weightMap tensor name to shard file name (relative to the folder), sorted by name
 */
public record CheckpointIndex(Path file, long totalSize, Map<String, String> weightMap) {

    public static final String FILE_NAME = "model.safetensors.index.json";

    private static final ObjectMapper READ = new ObjectMapper();
    /** Python's {@code json.dumps} escapes non-ASCII by default; so does the writer, to match transformers. */
    private static final ObjectMapper QUOTE = JsonMapper.builder().enable(JsonWriteFeature.ESCAPE_NON_ASCII).build();

    public CheckpointIndex {
        weightMap = Collections.unmodifiableMap(new TreeMap<>(weightMap));
    }

    public static CheckpointIndex read(Path file) throws IOException {
        JsonNode root;
        try {
            root = READ.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new MalformedCheckpointException(file, null, "not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new MalformedCheckpointException(file, null, "not a JSON object");
        }
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new MalformedCheckpointException(file, null, "has no \"weight_map\" object of tensor name to shard file");
        }
        Map<String, String> weightMap = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual() || !isPlainFileName(e.getValue().asText())) {
                throw new MalformedCheckpointException(file, e.getKey(), "weight_map gives " + e.getValue()
                        + " as its shard, not the name of a file in the checkpoint folder");
            }
            weightMap.put(e.getKey(), e.getValue().asText());
        }
        JsonNode total = root.path("metadata").path("total_size");
        return new CheckpointIndex(file, total.canConvertToLong() ? total.asLong() : -1, weightMap);
    }

    private static boolean isPlainFileName(String name) {
        return !name.isEmpty() && !name.contains("/") && !name.contains("\\") && !name.equals("..")
                && !name.equals(".");
    }

    /** Writes the index as transformers does: {@code json.dumps(index, indent=2, sort_keys=True) + "\n"}. */
    public void write() throws IOException {
        StringBuilder s = new StringBuilder();
        s.append("{\n  \"metadata\": {\n    \"total_size\": ").append(totalSize).append("\n  },\n");
        s.append("  \"weight_map\": {");
        String separator = "\n";
        for (Map.Entry<String, String> e : weightMap.entrySet()) {
            s.append(separator).append("    ").append(quote(e.getKey())).append(": ").append(quote(e.getValue()));
            separator = ",\n";
        }
        s.append(weightMap.isEmpty() ? "}\n}\n" : "\n  }\n}\n");
        Files.writeString(file, s, StandardCharsets.UTF_8);
    }

    private static String quote(String text) throws JsonProcessingException {
        return QUOTE.writeValueAsString(text);
    }
}
