package dev.longtune.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The JSON header of a safetensors file, parsed and checked the way the reference implementation checks it:
 * known dtypes, non-negative integer shapes, {@code data_offsets} that hold exactly dtype size × elements bytes,
 * and tensors packed back to back from offset 0 with neither overlap nor gap.
 */
final class SafetensorsHeader {

    /** The reference implementation refuses headers over 100 MB ({@code MAX_HEADER_SIZE}). */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    static final String METADATA_KEY = "__metadata__";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    /** One tensor as the header describes it; offsets relative to the start of the data buffer. */
    record Entry(String name, SafetensorsDType dtype, long[] shape, long begin, long end) {
        long length() { return end - begin; }
    }

    final Map<String, String> metadata;
    /** In data order (by offset). */
    final List<Entry> entries;
    /** Where the last tensor ends: the length the data buffer must have. */
    final long dataLength;

    private SafetensorsHeader(Map<String, String> metadata, List<Entry> entries, long dataLength) {
        this.metadata = metadata;
        this.entries = entries;
        this.dataLength = dataLength;
    }

    static SafetensorsHeader parse(Path file, byte[] json) throws MalformedCheckpointException {
        JsonNode root;
        String duplicate;
        try {
            duplicate = firstDuplicateName(json);
            root = duplicate == null ? JSON.readTree(json) : null;
        } catch (JsonProcessingException e) {
            throw new MalformedCheckpointException(file, null, "header is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new MalformedCheckpointException(file, null, "header cannot be read as JSON: " + e.getMessage(), e);
        }
        if (duplicate != null) {
            throw new MalformedCheckpointException(file, duplicate, "named twice in the header");
        }
        if (root == null || !root.isObject()) {
            throw new MalformedCheckpointException(file, null, "header is not a JSON object");
        }
        Map<String, String> metadata = Map.of();
        List<Entry> entries = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (field.getKey().equals(METADATA_KEY)) {
                metadata = metadata(file, field.getValue());
            } else {
                entries.add(entry(file, field.getKey(), field.getValue()));
            }
        }
        entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        return new SafetensorsHeader(metadata, List.copyOf(entries), checkPacked(file, entries));
    }

    /** Top-level names are tensor names, so a repeated one is reported as such rather than as a JSON error. */
    private static String firstDuplicateName(byte[] json) throws IOException {
        Set<String> seen = new HashSet<>();
        try (JsonParser p = new JsonFactory().createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                if (!seen.add(p.currentName())) {
                    return p.currentName();
                }
                p.nextToken();
                p.skipChildren();
            }
        }
        return null;
    }

    private static Map<String, String> metadata(Path file, JsonNode node) throws MalformedCheckpointException {
        if (!node.isObject()) {
            throw new MalformedCheckpointException(file, null, METADATA_KEY + " is not a JSON object of strings");
        }
        Map<String, String> out = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new MalformedCheckpointException(file, null, METADATA_KEY + " value of '" + e.getKey()
                        + "' is " + e.getValue() + ", not a string");
            }
            out.put(e.getKey(), e.getValue().asText());
        }
        return Collections.unmodifiableMap(out);
    }

    private static Entry entry(Path file, String name, JsonNode node) throws MalformedCheckpointException {
        if (!node.isObject()) {
            throw new MalformedCheckpointException(file, name, "header entry is " + node
                    + ", not an object with dtype, shape and data_offsets");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new MalformedCheckpointException(file, name, "header entry has no dtype string");
        }
        SafetensorsDType dtype = SafetensorsDType.parse(dtypeNode.asText());
        if (dtype == null) {
            throw new MalformedCheckpointException(file, name, "unknown dtype '" + dtypeNode.asText()
                    + "'; supported: " + SafetensorsDType.known());
        }
        long[] shape = nonNegativeIntegers(file, name, node.get("shape"), "shape", -1);
        long[] offsets = nonNegativeIntegers(file, name, node.get("data_offsets"), "data_offsets", 2);
        long begin = offsets[0], end = offsets[1];
        if (begin > end) {
            throw new MalformedCheckpointException(file, name, "data_offsets [" + begin + ", " + end
                    + "] are out of range: begin is past end");
        }
        long needed;
        try {
            needed = Math.multiplyExact(Shapes.elementCount(shape), dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new MalformedCheckpointException(file, name, "shape " + Shapes.format(shape)
                    + " has more elements than a file can hold");
        }
        if (end - begin != needed) {
            throw new MalformedCheckpointException(file, name, "data_offsets [" + begin + ", " + end + "] hold "
                    + (end - begin) + " bytes but dtype " + dtype + " × shape " + Shapes.format(shape) + " needs "
                    + needed);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    /** A JSON array of non-negative integers ({@code length} of them, unless negative). */
    private static long[] nonNegativeIntegers(Path file, String name, JsonNode node, String field, int length)
            throws MalformedCheckpointException {
        String expected = length < 0 ? "an array of non-negative integers"
                : "an array of " + length + " non-negative integers";
        if (node == null) {
            throw new MalformedCheckpointException(file, name, "header entry has no " + field);
        }
        if (!node.isArray() || (length >= 0 && node.size() != length)) {
            throw new MalformedCheckpointException(file, name, field + " is " + node + ", not " + expected);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw new MalformedCheckpointException(file, name, field + " is " + node + ", not " + expected);
            }
            out[i] = v.asLong();
        }
        return out;
    }

    /** Tensors sorted by offset must tile [0, end) exactly; returns end. */
    private static long checkPacked(Path file, List<Entry> sorted) throws MalformedCheckpointException {
        long expected = 0;
        Entry previous = null;
        for (Entry e : sorted) {
            if (e.begin() < expected) {
                throw new MalformedCheckpointException(file, e.name(), "data_offsets [" + e.begin() + ", " + e.end()
                        + "] overlap tensor '" + previous.name() + "' at [" + previous.begin() + ", "
                        + previous.end() + "]");
            }
            if (e.begin() > expected) {
                throw new MalformedCheckpointException(file, e.name(), "data_offsets [" + e.begin() + ", " + e.end()
                        + "] leave bytes [" + expected + ", " + e.begin() + ") of the data buffer unused"
                        + (previous == null ? "" : " after tensor '" + previous.name() + "'")
                        + "; safetensors packs tensors back to back");
            }
            expected = e.end();
            previous = e;
        }
        return expected;
    }

    /** The data buffer after the header must be exactly as long as the tensors need. */
    void checkDataLength(Path file, long available) throws MalformedCheckpointException {
        if (available < dataLength) {
            Entry cut = entries.stream().filter(e -> e.end() > available).findFirst().orElseThrow();
            throw new MalformedCheckpointException(file, cut.name(), "file is truncated: data_offsets ["
                    + cut.begin() + ", " + cut.end() + "] reach past the " + available
                    + " bytes of data the file holds after its header (tensors need " + dataLength + ")");
        }
        if (available > dataLength) {
            throw new MalformedCheckpointException(file, null, "the file holds " + available
                    + " bytes of data after its header but its tensors account for only " + dataLength
                    + "; the header does not describe the whole file");
        }
    }
}
