package dev.longtune.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * Reads and writes LongCite-45K JSONL: one conversation per line, as
 * {@code {"messages": [{"role": "user", "content": …}, {"role": "assistant", "content": …}]}}.
 * A line that is a bare list of messages (what LongCite's CoF pipeline writes) is read too. Blank lines are
 * skipped; {@code .gz} files are decompressed.
 *
 * <p>Each record must hold a user and an assistant message with string contents; roles are {@code system},
 * {@code user} or {@code assistant}; other fields are ignored. Errors are {@link DataFileException}s that name
 * the file, the line and the field. Citations are parsed when asked for ({@link LongCiteExample#citedAnswer()}),
 * so one bad answer does not stop a pass over 45K records that only needs tokens.
 */
public final class LongCiteJsonl {

    // one value per line: "{…} {…}" is an error, not the first object
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

    private LongCiteJsonl() {
    }

    /** Every record of {@code file}, in order. For the full 5.7 GB file use {@link #stream}. */
    public static List<LongCiteExample> read(Path file) {
        try (Stream<LongCiteExample> records = stream(file)) {
            return records.toList();
        }
    }

    /** The records of {@code file}, read as the stream is consumed; close the stream to close the file. */
    public static Stream<LongCiteExample> stream(Path file) {
        BufferedReader reader;
        try {
            InputStream in = Files.newInputStream(file);
            if (file.getFileName().toString().endsWith(".gz")) {
                in = new GZIPInputStream(in, 1 << 16);
            }
            reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8), 1 << 20);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
        Iterator<LongCiteExample> records = new Iterator<>() {
            private long lineNumber;
            private LongCiteExample next;

            @Override
            public boolean hasNext() {
                while (next == null) {
                    String line;
                    try {
                        line = reader.readLine();
                    } catch (IOException e) {
                        throw new UncheckedIOException(file + ":" + (lineNumber + 1) + ": " + e.getMessage(), e);
                    }
                    if (line == null) {
                        return false;
                    }
                    lineNumber++;
                    if (!line.isBlank()) {
                        next = parse(file, lineNumber, line);
                    }
                }
                return true;
            }

            @Override
            public LongCiteExample next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                LongCiteExample record = next;
                next = null;
                return record;
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(records, Spliterator.ORDERED | Spliterator.NONNULL),
                false).onClose(() -> {
                    try {
                        reader.close();
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
    }

    /** One JSONL line; {@code file} and {@code line} are for error messages. */
    public static LongCiteExample parse(Path file, long line, String json) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new DataFileException(file, line, "", "not valid JSON: " + e.getOriginalMessage(), e);
        }
        JsonNode messages;
        String prefix;
        if (root != null && root.isArray()) {
            messages = root;
            prefix = "";
        } else if (root != null && root.isObject()) {
            messages = root.get("messages");
            prefix = "messages";
            if (messages == null) {
                throw new DataFileException(file, line, "messages", "missing (expected a list of {role, content})");
            }
            if (!messages.isArray()) {
                throw new DataFileException(file, line, "messages", "expected a list, found " + kind(messages));
            }
        } else {
            throw new DataFileException(file, line, "", "expected a JSON object with \"messages\", found "
                    + kind(root));
        }
        List<ChatMessage> parsed = new ArrayList<>(messages.size());
        boolean user = false;
        boolean assistant = false;
        for (int i = 0; i < messages.size(); i++) {
            String field = prefix + "[" + i + "]";
            JsonNode m = messages.get(i);
            if (!m.isObject()) {
                throw new DataFileException(file, line, field, "expected an object {role, content}, found " + kind(m));
            }
            String roleName = string(file, line, m, field, "role");
            ChatMessage.Role role = ChatMessage.Role.parse(roleName).orElseThrow(() -> new DataFileException(file,
                    line, field + ".role", "unknown role '" + roleName + "' (expected system, user or assistant)"));
            String content = string(file, line, m, field, "content");
            parsed.add(new ChatMessage(role, content));
            user |= role == ChatMessage.Role.USER;
            assistant |= role == ChatMessage.Role.ASSISTANT;
        }
        String field = prefix.isEmpty() ? "" : prefix;
        if (!user) {
            throw new DataFileException(file, line, field, "no user message (it holds the document and question)");
        }
        if (!assistant) {
            throw new DataFileException(file, line, field, "no assistant message (it holds the cited answer)");
        }
        return new LongCiteExample(file, line, parsed);
    }

    /** Writes conversations as {@code {"messages": […]}} lines; {@code .gz} names are compressed. */
    public static void write(Path file, List<List<ChatMessage>> conversations) {
        try (OutputStream raw = Files.newOutputStream(file);
             OutputStream out = file.getFileName().toString().endsWith(".gz") ? new GZIPOutputStream(raw) : raw;
             BufferedWriter writer = new BufferedWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8))) {
            for (List<ChatMessage> conversation : conversations) {
                writer.write(toJson(conversation));
                writer.write('\n');
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** One record as a single JSON line, without the line break. */
    public static String toJson(List<ChatMessage> conversation) {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode messages = root.putArray("messages");
        for (ChatMessage m : conversation) {
            messages.addObject().put("role", m.role().wireName()).put("content", m.content());
        }
        try {
            return JSON.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String string(Path file, long line, JsonNode message, String field, String name) {
        JsonNode v = message.get(name);
        if (v == null) {
            throw new DataFileException(file, line, field + "." + name, "missing");
        }
        if (!v.isTextual()) {
            throw new DataFileException(file, line, field + "." + name, "expected a string, found " + kind(v));
        }
        return v.asText();
    }

    private static String kind(JsonNode node) {
        if (node == null || node.isMissingNode()) {
            return "nothing";
        }
        return switch (node.getNodeType()) {
            case ARRAY -> "a list";
            case OBJECT -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> node.getNodeType().toString().toLowerCase(Locale.ROOT);
        };
    }
}
