package dev.longtune.kernel;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import dev.longtune.Version;
import io.github.spencerpark.jupyter.kernel.BaseKernel;
import io.github.spencerpark.jupyter.kernel.LanguageInfo;
import io.github.spencerpark.jupyter.kernel.ReplacementOptions;
import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.magic.LineMagicArgs;
import io.github.spencerpark.jupyter.kernel.magic.MagicParser;
import io.github.spencerpark.jupyter.kernel.magic.registry.Magics;
import io.github.spencerpark.jupyter.kernel.magic.registry.UndefinedMagicException;

/**
 * The longtune Java kernel: IJava-compatible cells (JShell snippets, live values rendered by the
 * basekernel's renderer, %classpath/%jars magics) with the toolkit on the class path and imported.
 */
public class LongtuneKernel extends BaseKernel {
    private static final String STARTUP_SCRIPT = "startup.jsh";
    private static final String NOTEBOOK_CLASS = "dev.longtune.notebook.Notebook";
    /** Line magics as basekernel's MagicParser finds them: '%' and a word at the start of a line. */
    private static final Pattern MAGIC_LINE = Pattern.compile("(?m)^%\\w.*$");

    private static volatile LongtuneKernel current;

    private final PrintStream log = System.err; // the process's stderr, before any cell replaces it
    private final CompletableFuture<CellEvaluator> session;
    private final Magics magics = new Magics();
    private final MavenMagics maven = new MavenMagics(path -> evaluator().addToClasspath(path));
    private final MagicParser magicParser = new MagicParser();

    public LongtuneKernel() {
        this(Duration.ofSeconds(1), KernelSettings.fromEnvironment(System.getenv()));
    }

    /** @param stopGrace how long an interrupted cell may go on before its thread is stopped */
    public LongtuneKernel(Duration stopGrace) {
        this(stopGrace, KernelSettings.NONE);
    }

    /** @param settings class path, startup script, compiler options and cell timeout (from the environment) */
    LongtuneKernel(Duration stopGrace, KernelSettings settings) {
        this.timeout = settings.timeout();
        ClasspathMagics.register(magics, path -> evaluator().addToClasspath(path));
        maven.register(magics);
        magics.registerLineMagic("lsmagic", args -> {
            System.out.println("Line magics: " + String.join(" ", magicNames().stream().filter(n -> !n.startsWith("%%")).toList()));
            System.out.println("Cell magics: " + String.join(" ", magicNames().stream().filter(n -> n.startsWith("%%")).toList())
                    + "   (%%time on a cell's first line prints its wall time, %time CODE that line's; a line magic"
                    + " can stand as a value: var jars = %jars lib/*.jar;)");
            return null;
        });
        magics.registerLineMagic("time", args -> { // reached only without code after it: %time lines become Cells.time
            throw new MagicException("%time times the code after it on the same line (%time train(); %%time on a "
                    + "cell's first line times the whole cell)");
        });
        magics.registerLineMagic("load", args -> {
            if (args.size() != 1) {
                throw new MagicException("%load takes one .jsh or .java file, got " + args);
            }
            java.nio.file.Path file = java.nio.file.Path.of(args.get(0));
            if (!java.nio.file.Files.isRegularFile(file)) {
                throw new MagicException("%load " + file + ": no such file (relative paths start at "
                        + java.nio.file.Path.of("").toAbsolutePath() + ")");
            }
            evaluator().eval(java.nio.file.Files.readString(file), file.getFileName().toString());
            return null;
        });
        // JShell and javac take about a second to warm up: do it while the connection is set up.
        magics.registerLineMagic("timeout", args -> {
            if (args.size() > 1) {
                throw new MagicException("%timeout takes one duration (90s, 30m, 1h, 1500ms) or off; got " + args);
            }
            if (args.size() == 1) {
                try {
                    timeout = KernelSettings.timeout(args.get(0), "%timeout");
                } catch (IllegalArgumentException e) {
                    throw new MagicException(e.getMessage());
                }
            }
            System.out.println("cell timeout: " + KernelSettings.describe(timeout));
            return null;
        });
        this.session = CompletableFuture.supplyAsync(() -> startSession(stopGrace, settings), task -> {
            Thread t = new Thread(task, "longtune-kernel-start");
            t.setDaemon(true);
            t.start();
        });
        current = this;
    }

    /** The kernel running in this JVM (for {@link Display}); null outside a kernel. */
    public static LongtuneKernel current() {
        return current;
    }

    private CellEvaluator startSession(Duration stopGrace, KernelSettings settings) {
        CellEvaluator evaluator = new CellEvaluator(LongtuneKernel.class.getClassLoader(), stopGrace, settings.compilerOptions());
        for (String problem : evaluator.runScript(startupScript(), STARTUP_SCRIPT)) {
            log.println("longtune kernel: startup script: " + problem);
        }
        attachNotebook();
        for (String entry : settings.classpath()) {
            try {
                for (java.nio.file.Path p : ClasspathMagics.classpathEntry(entry)) {
                    evaluator.addToClasspath(p.toString());
                }
            } catch (Exception e) {
                log.println("longtune kernel: LONGTUNE_CLASSPATH: " + e.getMessage());
            }
        }
        if (settings.startupScript() != null) {
            try {
                String script = java.nio.file.Files.readString(settings.startupScript());
                for (String problem : evaluator.runScript(script, settings.startupScript().getFileName().toString())) {
                    log.println("longtune kernel: LONGTUNE_STARTUP_SCRIPT " + settings.startupScript() + ": " + problem);
                }
            } catch (IOException e) {
                log.println("longtune kernel: LONGTUNE_STARTUP_SCRIPT " + settings.startupScript() + ": cannot read: " + e);
            }
        }
        return evaluator;
    }

    private static String startupScript() {
        try (InputStream in = LongtuneKernel.class.getResourceAsStream(STARTUP_SCRIPT)) {
            return in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Lets the toolkit register its renderers: {@code Notebook.attach(BaseKernel)}. Called by reflection so
     * the kernel also starts with a toolkit that does not have it.
     */
    private void attachNotebook() {
        Class<?> notebook;
        try {
            notebook = Class.forName(NOTEBOOK_CLASS);
        } catch (ClassNotFoundException e) {
            return;
        }
        try {
            notebook.getMethod("attach", BaseKernel.class).invoke(null, this);
        } catch (InvocationTargetException e) {
            log.println("longtune kernel: " + NOTEBOOK_CLASS + ".attach failed: " + e.getCause());
        } catch (ReflectiveOperationException | LinkageError e) {
            log.println("longtune kernel: cannot call " + NOTEBOOK_CLASS + ".attach(BaseKernel): " + e);
        }
    }

    /** The JShell session, once started (waits for the start). */
    public CellEvaluator evaluator() {
        try {
            return session.join();
        } catch (CompletionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : e;
        }
    }

    /** Cell magics: a first line that applies to the whole cell. */
    static final List<String> CELL_MAGICS = List.of("loadFromPOM", "time");
    /** Line magics besides the class path ones. */
    static final List<String> LINE_MAGICS = List.of("lsmagic", "load", "timeout", "time");
    /** Cells running longer are interrupted (LONGTUNE_TIMEOUT, %timeout); null: no limit. */
    private volatile Duration timeout;
    private final java.util.concurrent.ScheduledExecutorService timer = java.util.concurrent.Executors
            .newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "longtune-cell-timeout");
                t.setDaemon(true);
                return t;
            });

    @Override
    public DisplayData eval(String code) throws Exception {
        // BaseKernel counts the cell before calling eval.
        String cellName = "In[" + (executionCount.get() - 1) + "]";
        Matcher pom = CELL_POM.matcher(code);
        if (pom.lookingAt()) {
            maven.loadFromPom(code.substring(pom.end()));
            return null;
        }
        boolean timed = CELL_TIME.matcher(code).lookingAt();
        if (timed) {
            code = CELL_TIME.matcher(code).replaceFirst(m -> " ".repeat(m.group().length())); // keeps line numbers
        }
        long wall = System.nanoTime();
        CellEvaluator evaluator = evaluator(); // waits for the session's start, which the timeout does not count
        Duration limit = timeout;
        java.util.concurrent.atomic.AtomicBoolean timedOut = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.ScheduledFuture<?> alarm = limit == null ? null : timer.schedule(() -> {
            timedOut.set(true);
            interrupt();
        }, limit.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        Runnable endOutput = CellOutput.begin(getIO());
        try {
            Object value;
            try {
                value = evaluator.eval(runMagics(code), cellName);
            } catch (Exception e) { // interrupted, or what the interrupt made the cell throw (InterruptedException)
                if (timedOut.get()) {
                    throw new CellInterruptedException("the cell ran past its timeout of " + KernelSettings.describe(limit)
                            + " and was interrupted (LONGTUNE_TIMEOUT; change it with %timeout 30m, or %timeout off)");
                }
                throw e;
            }
            if (value == null) {
                return null;
            }
            // The renderer would show a DisplayData as its toString.
            return value instanceof DisplayData d ? d : getRenderer().render(value);
        } finally {
            endOutput.run();
            if (alarm != null) {
                alarm.cancel(false);
            }
            if (timed) {
                // the kernel thread's CPU time; the cell itself runs on a worker thread and may start others
                System.out.printf(java.util.Locale.ROOT, "Wall time: %s%n", seconds((System.nanoTime() - wall) / 1e9));
            }
            System.out.flush();
            System.err.flush();
        }
    }

    private static final java.util.regex.Pattern CELL_POM = java.util.regex.Pattern.compile("\\A[ \\t]*%%loadFromPOM[ \\t]*(\\R|\\z)");
    private static final java.util.regex.Pattern CELL_TIME = java.util.regex.Pattern.compile("\\A[ \\t]*%%time[ \\t]*(\\R|\\z)");

    /** A line magic called from running code (an inline magic): its arguments split as basekernel splits a line's. */
    Object applyLineMagic(String name, String args) throws Exception {
        try {
            return magics.applyLineMagic(name, MagicArgs.of(args));
        } catch (UndefinedMagicException e) {
            throw new MagicException("unknown line magic %" + name + " (%lsmagic lists them)");
        }
    }

    /** basekernel's argument splitting (quotes, escapes), which it keeps protected. */
    private static final class MagicArgs extends io.github.spencerpark.jupyter.kernel.magic.MagicParser {
        static List<String> of(String args) {
            return args.isBlank() ? List.of() : io.github.spencerpark.jupyter.kernel.magic.MagicParser.split(args);
        }
    }

    static String seconds(double s) {
        return s < 1 ? String.format(java.util.Locale.ROOT, "%.1f ms", s * 1000) : String.format(java.util.Locale.ROOT, "%.3f s", s);
    }

    @Override
    public DisplayData inspect(String code, int at, boolean extraDetail) {
        String doc = evaluator().inspect(blankMagics(code), at);
        return doc == null ? null : new DisplayData(doc);
    }

    /** Every magic, as %name and %%name. */
    static List<String> magicNames() {
        List<String> names = new ArrayList<>();
        ClasspathMagics.NAMES.forEach(n -> names.add("%" + n));
        MavenMagics.NAMES.forEach(n -> names.add("%" + n));
        LINE_MAGICS.forEach(n -> names.add("%" + n));
        CELL_MAGICS.forEach(n -> names.add("%%" + n));
        return names;
    }

    /** {@code %time CODE} on a line: that line's code, timed (its value, if it is the cell's last, shown). */
    private static final Pattern LINE_TIME = Pattern.compile("(?m)^([ \\t]*)%time[ \\t]+(\\S.*)$");

    /**
     * A line magic used as a value, as JJava allows ({@code var jars = %jars lib/*.jar;}): after '=', '(', ',' or
     * {@code return}, a magic this kernel knows, its arguments up to ';', ')' or the line's end. Only known names
     * match, so a format string's {@code "n = %d"} is left alone.
     */
    private static Pattern inlineMagic() {
        List<String> names = magicNames().stream().filter(n -> !n.startsWith("%%") && !n.equals("%time")).map(n -> n.substring(1))
                .sorted(java.util.Comparator.comparingInt(String::length).reversed()).toList();
        return Pattern.compile("(?<=[=(,]|\\breturn)([ \\t]*)%(" + String.join("|", names) + ")\\b([^;\\n)]*)");
    }

    /** The code as a Java string literal. */
    static String javaString(String code) {
        StringBuilder s = new StringBuilder("\"");
        for (char ch : code.toCharArray()) {
            switch (ch) {
                case '\\' -> s.append("\\\\");
                case '"' -> s.append("\\\"");
                case '\t' -> s.append("\\t");
                default -> s.append(ch);
            }
        }
        return s.append('"').toString();
    }

    /**
     * Runs the cell's line magics, in order and before its code, and returns the code without them; {@code %time}
     * lines and magics used as values become calls that run when the code reaches them ({@link Cells}).
     */
    private String runMagics(String code) throws Exception {
        code = LINE_TIME.matcher(code).replaceAll(m -> Matcher.quoteReplacement(m.group(1) + "dev.longtune.kernel.Cells.time("
                + javaString(m.group(2)) + ");")); // ';': the next line is another snippet; the value still shows
        code = inlineMagic().matcher(code).replaceAll(m -> Matcher.quoteReplacement(m.group(1)
                + "dev.longtune.kernel.Cells.lineMagic(" + javaString(m.group(2)) + ", " + javaString(m.group(3).strip()) + ")"));
        List<LineMagicArgs> calls = new ArrayList<>();
        String java = magicParser.transformLineMagics(code, context -> {
            calls.add(context.getMagicCall());
            return ""; // keeps the line, so line numbers in errors stay right
        });
        for (LineMagicArgs call : calls) {
            try {
                magics.applyLineMagic(call.getName(), call.getArgs());
            } catch (UndefinedMagicException e) {
                throw new MagicException("unknown line magic %" + call.getName() + "; this kernel knows "
                        + String.join(", ", magicNames()) + " (%lsmagic lists them)");
            }
        }
        return java;
    }

    /** The code with each magic line replaced by spaces: same length, so offsets stay valid. */
    private static String blankMagics(String code) {
        Matcher m = MAGIC_LINE.matcher(code);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            m.appendReplacement(out, " ".repeat(m.group().length()));
        }
        return m.appendTail(out).toString();
    }

    @Override
    public String isComplete(String code) {
        return evaluator().isComplete(blankMagics(code));
    }

    @Override
    public ReplacementOptions complete(String code, int at) {
        int lineStart = code.lastIndexOf('\n', Math.max(0, at - 1)) + 1;
        String line = code.substring(lineStart, Math.min(at, code.length()));
        if (MAGIC_PREFIX.matcher(line).matches()) {
            String typed = line.strip();
            List<String> names = magicNames().stream().filter(n -> n.startsWith(typed)).toList();
            return new ReplacementOptions(names, lineStart + line.indexOf('%'), at);
        }
        return evaluator().complete(blankMagics(code), at);
    }

    private static final java.util.regex.Pattern MAGIC_PREFIX = java.util.regex.Pattern.compile("[ \\t]*%{1,2}\\w*");

    @Override
    public void interrupt() {
        if (session.isDone() && !session.isCompletedExceptionally()) {
            session.join().interrupt();
        }
    }

    @Override
    public void onShutdown(boolean isRestarting) {
        timer.shutdownNow();
        if (session.isDone() && !session.isCompletedExceptionally()) {
            session.join().close();
        }
    }

    @Override
    public LanguageInfo getLanguageInfo() {
        return new LanguageInfo("java", Runtime.version().toString(), "text/x-java-source", ".jshell",
                "java", "java", null);
    }

    @Override
    public String getBanner() {
        return "Java " + Runtime.version() + " :: longtune " + Version.get() + " kernel\n"
                + "Cells run in JShell with the longtune toolkit on the class path; %classpath and %jars add jars.";
    }

    @Override
    public List<LanguageInfo.Help> getHelpLinks() {
        return List.of(new LanguageInfo.Help("Java 17 API",
                "https://docs.oracle.com/en/java/javase/17/docs/api/index.html"));
    }

    @Override
    public List<String> formatError(Exception e) {
        List<String> lines = errorLines(e);
        if (lines == null || lines.isEmpty()) {
            return super.formatError(e);
        }
        List<String> styled = new ArrayList<>(lines);
        styled.set(0, errorStyler.secondary(lines.get(0)));
        return styled;
    }

    /** The unstyled lines shown for an error from a cell, or null to use the basekernel's stack trace. */
    List<String> errorLines(Exception e) {
        if (e instanceof CompilationException c) {
            return c.report();
        }
        if (e instanceof UserCodeError u) {
            return u.report();
        }
        if (e instanceof CellInterruptedException || e instanceof MagicException) {
            return List.of(e.getMessage());
        }
        return session.isDone() && !session.isCompletedExceptionally() ? session.join().traceback(e) : null;
    }
}
