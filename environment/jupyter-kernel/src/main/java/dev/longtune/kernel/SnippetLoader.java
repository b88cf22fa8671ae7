package dev.longtune.kernel;

import java.io.File;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import jdk.jshell.execution.LoaderDelegate;
import jdk.jshell.spi.ExecutionControl.ClassBytecodes;
import jdk.jshell.spi.ExecutionControl.ClassInstallException;
import jdk.jshell.spi.ExecutionControl.InternalException;

/**
 * Loads the classes JShell compiles from cells, and the jars that magics add.
 *
 * <p>Its parent is the kernel's own class loader, so snippets use the very toolkit classes the kernel
 * loaded. That matters: a JNI library can be loaded by one class loader only, so the toolkit must never
 * be loaded a second time by this child loader. (JDK's own DefaultLoaderDelegate is package-private.)
 */
final class SnippetLoader implements LoaderDelegate {

    private static final class Loader extends URLClassLoader {
        private final Map<String, byte[]> pending = new ConcurrentHashMap<>();

        Loader(ClassLoader parent) {
            super("longtune-snippets", new URL[0], parent);
        }

        @Override
        protected Class<?> findClass(String name) throws ClassNotFoundException {
            byte[] bytes = pending.remove(name);
            if (bytes != null) {
                return defineClass(name, bytes, 0, bytes.length);
            }
            return super.findClass(name);
        }

        void addJar(URL url) {
            addURL(url);
        }
    }

    private final Loader loader;

    SnippetLoader(ClassLoader parent) {
        this.loader = new Loader(parent);
    }

    ClassLoader classLoader() {
        return loader;
    }

    @Override
    public void load(ClassBytecodes[] classes) throws ClassInstallException {
        // Declare the whole batch first: the classes of one snippet may refer to each other.
        for (ClassBytecodes c : classes) {
            loader.pending.put(c.name(), c.bytecodes());
        }
        boolean[] installed = new boolean[classes.length];
        for (int i = 0; i < classes.length; i++) {
            try {
                loader.loadClass(classes[i].name());
                installed[i] = true;
            } catch (ClassNotFoundException | LinkageError e) {
                throw new ClassInstallException("cannot load " + classes[i].name() + ": " + e, installed);
            }
        }
    }

    @Override
    public void classesRedefined(ClassBytecodes[] classes) {
        // Redefinition is not supported by DirectExecutionControl; JShell then loads new class names.
    }

    @Override
    public void addToClasspath(String path) throws InternalException {
        for (String entry : path.split(File.pathSeparator)) {
            if (entry.isEmpty()) {
                continue;
            }
            try {
                loader.addJar(Path.of(entry).toAbsolutePath().toUri().toURL());
            } catch (MalformedURLException e) {
                throw new InternalException("bad class path entry " + entry + ": " + e.getMessage());
            }
        }
    }

    @Override
    public Class<?> findClass(String name) throws ClassNotFoundException {
        return Class.forName(name, false, loader);
    }
}
