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
    private final MagicParser magicParser = new MagicParser();

    public LongtuneKernel() {
        this(Duration.ofSeconds(1));
    }

    /** @param stopGrace how long an interrupted cell may go on before its thread is stopped */
    public LongtuneKernel(Duration stopGrace) {
        ClasspathMagics.register(magics, path -> evaluator().addToClasspath(path));
        // JShell and javac take about a second to warm up: do it while the connection is set up.
        this.session = CompletableFuture.supplyAsync(() -> startSession(stopGrace), task -> {
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

    private CellEvaluator startSession(Duration stopGrace) {
        CellEvaluator evaluator = new CellEvaluator(LongtuneKernel.class.getClassLoader(), stopGrace);
        for (String problem : evaluator.runScript(startupScript(), STARTUP_SCRIPT)) {
            log.println("longtune kernel: startup script: " + problem);
        }
        attachNotebook();
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

    @Override
    public DisplayData eval(String code) throws Exception {
        // BaseKernel counts the cell before calling eval.
        String cellName = "In[" + (executionCount.get() - 1) + "]";
        try {
            Object value = evaluator().eval(runMagics(code), cellName);
            if (value == null) {
                return null;
            }
            // The renderer would show a DisplayData as its toString.
            return value instanceof DisplayData d ? d : getRenderer().render(value);
        } finally {
            System.out.flush();
            System.err.flush();
        }
    }

    /** Runs the cell's line magics, in order and before its code; returns the code without them. */
    private String runMagics(String code) throws Exception {
        List<LineMagicArgs> calls = new ArrayList<>();
        String java = magicParser.transformLineMagics(code, context -> {
            calls.add(context.getMagicCall());
            return ""; // keeps the line, so line numbers in errors stay right
        });
        for (LineMagicArgs call : calls) {
            try {
                magics.applyLineMagic(call.getName(), call.getArgs());
            } catch (UndefinedMagicException e) {
                throw new MagicException("unknown line magic %" + call.getName() + "; this kernel knows %"
                        + String.join(", %", ClasspathMagics.NAMES));
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
        return evaluator().complete(blankMagics(code), at);
    }

    @Override
    public void interrupt() {
        if (session.isDone() && !session.isCompletedExceptionally()) {
            session.join().interrupt();
        }
    }

    @Override
    public void onShutdown(boolean isRestarting) {
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
