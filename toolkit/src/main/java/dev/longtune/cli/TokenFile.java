package dev.longtune.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A file of token ids: one sequence per line, ids separated by whitespace; blank lines are skipped. */
final class TokenFile {
    private TokenFile() {}

    /** The sequences of {@code file}, every id checked to lie in [0, vocab); errors name the file, line and token. */
    static List<int[]> read(Path file, int vocab) throws IOException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("token file " + file + " does not exist");
        }
        List<int[]> sequences = new ArrayList<>();
        for (int n = 0; n < lines.size(); n++) {
            String line = lines.get(n).strip();
            if (line.isEmpty()) {
                continue;
            }
            String[] words = line.split("\\s+");
            int[] ids = new int[words.length];
            for (int i = 0; i < words.length; i++) {
                String where = file + " line " + (n + 1) + ", token " + (i + 1);
                try {
                    ids[i] = Integer.parseInt(words[i]);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(where + ": '" + words[i] + "' is not a token id (integers separated by spaces, one sequence per line)");
                }
                if (ids[i] < 0 || ids[i] >= vocab) {
                    throw new IllegalArgumentException(where + ": token id " + ids[i] + " is outside the model's vocabulary of "
                            + vocab + " (ids 0.." + (vocab - 1) + ")");
                }
            }
            sequences.add(ids);
        }
        if (sequences.stream().allMatch(s -> s.length < 2)) {
            throw new IllegalArgumentException(file + " has no sequence of two or more tokens, so there is nothing to predict");
        }
        return sequences;
    }
}
