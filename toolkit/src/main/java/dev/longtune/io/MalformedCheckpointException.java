package dev.longtune.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A model file or checkpoint folder that cannot be used as it is. The message always names the file (or folder),
 * the tensor when the problem concerns one, and the problem itself:
 * {@code <file>: tensor '<name>': <problem>}.
 */
public class MalformedCheckpointException extends IOException {

    private final Path file;
    private final String tensor;
    private final String problem;

    public MalformedCheckpointException(Path file, String tensor, String problem) {
        this(file, tensor, problem, null);
    }

    public MalformedCheckpointException(Path file, String tensor, String problem, Throwable cause) {
        super(file + ": " + (tensor == null ? "" : "tensor '" + tensor + "': ") + problem, cause);
        this.file = file;
        this.tensor = tensor;
        this.problem = problem;
    }

    /** The file or folder at fault. */
    public Path file() { return file; }

    /** The tensor concerned, or {@code null} when the problem is with the file as a whole. */
    public String tensor() { return tensor; }

    /** What is wrong, without the file and tensor. */
    public String problem() { return problem; }
}
