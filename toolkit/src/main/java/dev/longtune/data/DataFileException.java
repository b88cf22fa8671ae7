package dev.longtune.data;

import java.nio.file.Path;

/** A record of a data file that cannot be used; the message names the file, the line and the field. */
public final class DataFileException extends IllegalArgumentException {

    private final Path file;
    private final long line;
    private final String field;

    public DataFileException(Path file, long line, String field, String problem) {
        this(file, line, field, problem, null);
    }

    public DataFileException(Path file, long line, String field, String problem, Throwable cause) {
        super(file + ":" + line + ": " + (field == null || field.isEmpty() ? "" : "field " + field + ": ") + problem,
                cause);
        this.file = file;
        this.line = line;
        this.field = field;
    }

    public Path file() {
        return file;
    }

    /** 1-based line number. */
    public long line() {
        return line;
    }

    /** The JSON path of the field, e.g. {@code messages[1].content}; empty for the record as a whole. */
    public String field() {
        return field == null ? "" : field;
    }
}
