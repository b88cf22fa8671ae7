package dev.longtune.run;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A training run's folder, what it leaves behind and what a resume starts from:
 * <pre>
 *   config.json          the run: model, data, context, stack, precision, seed, schedule, git commit
 *   log.jsonl            one JSON object per step (loss, grad norm, LR, loss scale, tokens/s, busy time, memory)
 *   checkpoints/step-000012/   complete checkpoints (TrainingCheckpoint's folders), the newest K kept
 *   loss.png, throughput.png, memory.png (and .svg)   drawn from the log when the run ends
 * </pre>
 * A checkpoint is written under a hidden partial name and renamed when complete (one atomic rename within the
 * folder), so a crash or a kill during a save leaves the previous checkpoints intact and no folder that looks
 * complete but is not; partial folders are removed when the run is opened again.
 */
public final class RunFolder {
    public static final String CONFIG = "config.json", LOG = "log.jsonl", CHECKPOINTS = "checkpoints";
    private static final Pattern COMPLETE = Pattern.compile("step-(\\d{6,})");
    private static final String PARTIAL_PREFIX = ".partial-";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final ObjectMapper LINE = new ObjectMapper();

    /** Writes a checkpoint's files into a folder. */
    public interface CheckpointWriter {
        void write(Path folder) throws IOException;
    }

    private final Path dir;

    private RunFolder(Path dir) { this.dir = dir; }

    /** Opens (creating it if needed) the run folder at {@code dir} and removes partial checkpoints a crash left. */
    public static RunFolder open(Path dir) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("--run-dir " + dir + " is a file, not a folder");
        }
        Files.createDirectories(dir.resolve(CHECKPOINTS));
        RunFolder run = new RunFolder(dir);
        for (Path partial : run.list(p -> p.getFileName().toString().startsWith(PARTIAL_PREFIX))) {
            deleteTree(partial);
        }
        return run;
    }

    /** The run folder at {@code dir} for reading only: partial checkpoints (perhaps a save in progress) stay. */
    static RunFolder read(Path dir) { return new RunFolder(dir); }

    public Path dir() { return dir; }

    /** Whether a run has been started here (its config.json exists). */
    public boolean started() { return Files.isRegularFile(dir.resolve(CONFIG)); }

    /** The run's config.json, as written by {@link #writeConfig}. */
    public Map<String, Object> config() throws IOException {
        return JSON.readValue(dir.resolve(CONFIG).toFile(), new TypeReference<LinkedHashMap<String, Object>>() { });
    }

    public void writeConfig(Map<String, Object> config) throws IOException {
        Path tmp = dir.resolve(CONFIG + ".tmp");
        JSON.writeValue(tmp.toFile(), config);
        Files.move(tmp, dir.resolve(CONFIG), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The best evaluation so far ({@code best.json}: step and eval loss), if any. */
    public Optional<Map<String, Object>> best() throws IOException {
        Path f = dir.resolve("best.json");
        return Files.exists(f) ? Optional.of(JSON.readValue(f.toFile(), new TypeReference<LinkedHashMap<String, Object>>() { }))
                : Optional.empty();
    }

    public void writeBest(int step, double evalLoss) throws IOException {
        Map<String, Object> best = new LinkedHashMap<>();
        best.put("step", step);
        best.put("eval_loss", evalLoss);
        Path tmp = dir.resolve("best.json.tmp");
        JSON.writeValue(tmp.toFile(), best);
        Files.move(tmp, dir.resolve("best.json"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    // ---- the log

    /** Appends one step's line to log.jsonl (flushed to the file before returning). */
    public void log(Map<String, Object> line) throws IOException {
        Files.writeString(dir.resolve(LOG), LINE.writeValueAsString(line) + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.SYNC);
    }

    /** The log's lines, in order. */
    public List<Map<String, Object>> logLines() throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        Path log = dir.resolve(LOG);
        if (!Files.exists(log)) {
            return out;
        }
        for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
            if (!line.isBlank()) {
                try {
                    out.add(LINE.readValue(line, new TypeReference<LinkedHashMap<String, Object>>() { }));
                } catch (IOException e) {
                    break; // a line cut by a kill mid-write ends the log
                }
            }
        }
        return out;
    }

    /**
     * Keeps the log's lines up to {@code step} and drops the rest: steps after the checkpoint a run resumes from
     * were lost with the process, and the resumed run logs them again.
     */
    public void truncateLogAfter(int step) throws IOException {
        List<Map<String, Object>> kept = new ArrayList<>();
        for (Map<String, Object> line : logLines()) {
            Object s = line.get("step");
            if (s instanceof Number n && n.intValue() <= step) {
                kept.add(line);
            }
        }
        StringBuilder text = new StringBuilder();
        for (Map<String, Object> line : kept) {
            text.append(LINE.writeValueAsString(line)).append('\n');
        }
        Path tmp = dir.resolve(LOG + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, dir.resolve(LOG), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    // ---- checkpoints

    /** The complete checkpoints, oldest first. */
    public List<Path> checkpoints() {
        List<Path> out = list(p -> COMPLETE.matcher(p.getFileName().toString()).matches());
        out.sort(Comparator.comparingInt(RunFolder::stepOf));
        return out;
    }

    /** The newest complete checkpoint, if any. */
    public Optional<Path> latestCheckpoint() {
        List<Path> all = checkpoints();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** The step a checkpoint folder holds (from its name). */
    public static int stepOf(Path checkpoint) {
        Matcher m = COMPLETE.matcher(checkpoint.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException(checkpoint + " is not a checkpoint folder (step-NNNNNN)");
        }
        return Integer.parseInt(m.group(1));
    }

    /**
     * Writes the checkpoint of {@code step} through {@code writer} into a partial folder, then renames it to
     * {@code checkpoints/step-NNNNNN} (replacing one of that step, if any), and removes all but the newest
     * {@code keep} complete checkpoints. Returns the complete folder.
     */
    public Path saveCheckpoint(int step, int keep, CheckpointWriter writer) throws IOException {
        return saveCheckpoint(step, keep, -1, writer);
    }

    /** As above, and the checkpoint of step {@code best} (the best by evaluation loss; −1: none) is kept too. */
    public Path saveCheckpoint(int step, int keep, int best, CheckpointWriter writer) throws IOException {
        return saveCheckpoint(step, keep, best, writer, Sharing.ALONE);
    }

    /**
     * Who writes a checkpoint: this process alone, or the nodes of a run that share the folder (a shared
     * filesystem), where node 0 prepares the partial folder, moves it into place and drops old checkpoints, and every
     * node writes into it (the writer meets the other nodes: {@code DataParallel.save}).
     */
    public enum Sharing { ALONE, FIRST_NODE, OTHER_NODE }

    /** As above, written by {@code sharing}: the partial folder's name is then the same on every node. */
    public Path saveCheckpoint(int step, int keep, int best, CheckpointWriter writer, Sharing sharing) throws IOException {
        if (keep < 1) {
            throw new IllegalArgumentException("--keep must be at least 1, got " + keep);
        }
        Path checkpoints = dir.resolve(CHECKPOINTS);
        Path partial = checkpoints.resolve(PARTIAL_PREFIX + String.format("step-%06d", step) + "-"
                + (sharing == Sharing.ALONE ? String.valueOf(ProcessHandle.current().pid()) : "nodes"));
        Path complete = checkpoints.resolve(String.format("step-%06d", step));
        if (sharing == Sharing.OTHER_NODE) {
            writer.write(partial); // node 0 made the folder, and moves it into place once every node has written
            return complete;
        }
        deleteTree(partial);
        Files.createDirectories(partial);
        writer.write(partial);
        pauseForCrashTests();
        if (Files.exists(complete)) {
            deleteTree(complete);
        }
        Files.move(partial, complete, StandardCopyOption.ATOMIC_MOVE);
        List<Path> all = checkpoints();
        for (int i = 0; i < all.size() - keep; i++) {
            if (stepOf(all.get(i)) != best) {
                deleteTree(all.get(i));
            }
        }
        return complete;
    }

    /**
     * Refuses to start a run whose checkpoints will not fit its disk: {@code keep} complete checkpoints plus the one
     * being written, each the compute-precision weights and the FP32 optimizer state.
     */
    public static void requireRoomForCheckpoints(Path dir, dev.longtune.train.Trainer trainer, int keep) throws IOException {
        long n = trainer.model().config().totalParameters();
        long weights = n * trainer.model().dtype().bytes;
        long optimizer = n * (trainer.model().dtype() == dev.longtune.tensor.DType.FP32 ? 8L : 12L);
        long one = weights + optimizer, needed = (keep + 1L) * one;
        long free = Files.getFileStore(dir).getUsableSpace();
        if (needed > free) {
            throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "--run-dir %s: %d checkpoints of %s "
                    + "(weights %s + optimizer state %s) need %s, and its disk has %s free: lower --keep or choose a "
                    + "folder on a larger disk", dir, keep + 1, human(one), human(weights), human(optimizer), human(needed),
                    human(free)));
        }
    }

    private static String human(long bytes) { return dev.longtune.plan.Units.human(bytes); }

    /**
     * The commit of the code that runs: {@code -Dlongtune.git.commit} (the {@code ./longtune} launcher sets it from
     * its checkout), else the working directory's repository, else null.
     */
    public static String gitCommit() {
        String given = System.getProperty("longtune.git.commit");
        if (given != null && !given.isBlank()) {
            return given;
        }
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "HEAD").redirectErrorStream(true).start();
            if (!p.waitFor(5, java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return null;
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            return p.exitValue() == 0 && out.matches("[0-9a-f]{40}") ? out : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /**
     * {@code -Dlongtune.test.saveDelayMs=N} holds a written checkpoint in its partial folder for N ms before the
     * rename, so that the crash tests can kill a run in the middle of a save.
     */
    private static void pauseForCrashTests() {
        long ms = Long.getLong("longtune.test.saveDelayMs", 0);
        if (ms > 0) {
            try {
                Thread.sleep(ms);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private List<Path> list(java.util.function.Predicate<Path> which) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir.resolve(CHECKPOINTS))) {
            return out;
        }
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir.resolve(CHECKPOINTS))) {
            for (Path p : s) {
                if (Files.isDirectory(p) && which.test(p)) {
                    out.add(p);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var walk = Files.walk(p)) {
            for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }
}
