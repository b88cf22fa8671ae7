package dev.longtune.kernel;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import io.github.spencerpark.jupyter.kernel.magic.registry.Magics;
import io.github.spencerpark.jupyter.kernel.util.GlobFinder;

/**
 * {@code %classpath <paths…>} and {@code %jars <globs…>}: put jars (or class folders) on the class path
 * of the cells that follow. Relative paths are taken from the kernel's working directory (the notebook's).
 */
final class ClasspathMagics {
    static final List<String> NAMES = List.of("classpath", "jars");

    private ClasspathMagics() {}

    static void register(Magics magics, Consumer<String> addToClasspath) {
        // each returns the paths it added, for a magic used as a value (var jars = %jars lib/*.jar;)
        magics.registerLineMagic("classpath", args -> added(paths(args), addToClasspath));
        magics.registerLineMagic("jars", args -> added(globbed(args), addToClasspath));
    }

    private static List<String> added(List<Path> paths, Consumer<String> addToClasspath) {
        List<String> added = new ArrayList<>();
        for (Path p : paths) {
            addToClasspath.accept(p.toString());
            added.add(p.toString());
        }
        return added;
    }

    private static List<Path> paths(List<String> args) throws MagicException {
        if (args.isEmpty()) {
            throw new MagicException("%classpath needs one or more paths");
        }
        List<Path> paths = new ArrayList<>();
        for (String arg : args) {
            for (String entry : arg.split(File.pathSeparator)) {
                if (entry.isBlank()) {
                    continue;
                }
                Path p = Path.of(entry).toAbsolutePath().normalize();
                if (!Files.exists(p)) {
                    throw new MagicException("%classpath: no such file or folder: " + p);
                }
                paths.add(p);
            }
        }
        return paths;
    }

    /** One class path entry as LONGTUNE_CLASSPATH gives it: a path, or a glob of jars (as %jars). */
    static List<Path> classpathEntry(String entry) throws Exception {
        return entry.contains("*") || entry.contains("?") ? globbed(List.of(entry)) : paths(List.of(entry));
    }

    private static List<Path> globbed(List<String> globs) throws Exception {
        if (globs.isEmpty()) {
            throw new MagicException("%jars needs one or more globs, e.g. %jars lib/*.jar");
        }
        List<Path> paths = new ArrayList<>();
        for (String glob : globs) {
            int before = paths.size();
            Iterable<Path> matches;
            try {
                matches = new GlobFinder(glob).computeMatchingFiles();
            } catch (IOException e) {
                // a folder in the glob does not exist (GlobFinder walks from the glob's fixed prefix)
                throw new MagicException("%jars: cannot read " + describe(e) + " (from " + glob
                        + "): check the folder; relative globs start at " + Path.of("").toAbsolutePath());
            }
            for (Path p : matches) {
                paths.add(p.toAbsolutePath().normalize());
            }
            if (paths.size() == before) {
                throw new MagicException("%jars: no file matches " + glob);
            }
        }
        return paths;
    }

    private static String describe(IOException e) {
        return e instanceof NoSuchFileException n ? "no such folder " + n.getFile() : e.toString();
    }
}
