package dev.longtune.kernel;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import io.github.spencerpark.jupyter.kernel.ReplacementOptions;
import jdk.jshell.DeclarationSnippet;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.SourceCodeAnalysis.CompletionInfo;
import jdk.jshell.SourceCodeAnalysis.Completeness;
import jdk.jshell.UnresolvedReferenceException;

/**
 * Evaluates cells in an in-process JShell. A cell is split into snippets (JShell takes one at a time);
 * its value is the live object of its last snippet when that is an expression, otherwise null.
 *
 * <p>Not thread-safe, except {@link #interrupt()}: the kernel calls everything else from its shell thread.
 */
public final class CellEvaluator implements AutoCloseable {

    private final LiveExecutionControl control;
    private final JShell jshell;
    private final SourceCodeAnalysis analysis;
    private final Map<String, Traceback.Origin> origins = new ConcurrentHashMap<>();
    private Exception lastFailure;
    private List<String> lastTraceback;

    /**
     * @param parent    loader of the classes cells may use (the kernel's, with the toolkit)
     * @param stopGrace how long an interrupted cell may go on before its thread is stopped
     */
    public CellEvaluator(ClassLoader parent, Duration stopGrace) {
        this(parent, stopGrace, List.of());
    }

    /** @param compilerOptions for the cells' compiler (LONGTUNE_COMPILER_OPTS), e.g. --enable-preview --release 21 */
    public CellEvaluator(ClassLoader parent, Duration stopGrace, List<String> compilerOptions) {
        this.control = new LiveExecutionControl(new SnippetLoader(parent), stopGrace);
        // No "--class-path" compiler option: in this JVM JShell's compiler starts from java.class.path
        // already, and an explicit option would hide the jars that addToClasspath (%classpath) adds.
        this.jshell = JShell.builder()
                .executionEngine(control.provider(), Map.of())
                .compilerOptions(compilerOptions.toArray(String[]::new))
                .build();
        this.analysis = jshell.sourceCodeAnalysis();
    }

    /**
     * Runs a cell (magics already removed) and returns the live value of its last expression, or null.
     * Throws {@link CompilationException}, the exception the user's code threw (an Error arrives as
     * {@link UserCodeError}), or {@link CellInterruptedException}.
     */
    public Object eval(String code, String cellName) throws Exception {
        control.resetInterrupt();
        lastFailure = null;
        lastTraceback = null;
        try {
            Object value = null;
            for (Piece piece : split(code)) {
                if (control.interruptRequested()) {
                    throw new CellInterruptedException();
                }
                // loops check the interrupt (Thread.stop is gone after JDK 19); same lines, same line numbers
                value = evalSnippet(Interrupts.instrument(piece.source()), code, piece.offset(), cellName);
            }
            return value;
        } finally {
            control.clearResults();
        }
    }

    /**
     * Runs code from inside a running cell ({@code eval(String)} in the startup script): its snippets join the session
     * (a declaration stays visible to later cells) and the value of its last expression is returned. Errors arrive as
     * in {@link #eval}; the interrupt state and held results are the enclosing cell's and are left as they are.
     */
    public Object evalNested(String code) throws Exception {
        Object value = null;
        for (Piece piece : split(code)) {
            if (control.interruptRequested()) {
                throw new CellInterruptedException();
            }
            value = evalSnippet(Interrupts.instrument(piece.source()), code, piece.offset(), "eval");
        }
        return value;
    }

    /** Runs a script such as the startup script, going on past failing snippets; returns the failures. */
    public List<String> runScript(String script, String name) {
        List<String> problems = new ArrayList<>();
        for (Piece piece : split(script)) {
            try {
                evalSnippet(piece.source(), script, piece.offset(), name);
            } catch (CompilationException e) {
                problems.add(String.join("\n", e.report()));
            } catch (Exception e) {
                problems.add(e.toString());
            }
        }
        control.clearResults();
        return problems;
    }

    /** One snippet of a cell: its source as JShell takes it, and where it starts in the cell. */
    private record Piece(String source, int offset) {}

    /** Splits a cell into snippets; JShell's eval takes one at a time. */
    private List<Piece> split(String code) {
        List<Piece> pieces = new ArrayList<>();
        String rest = code;
        int offset = 0;
        while (!rest.isBlank()) {
            CompletionInfo info = analysis.analyzeCompletion(rest);
            if (info.completeness() == Completeness.EMPTY) {
                break; // only comments are left
            }
            if (!info.completeness().isComplete() || info.remaining().length() >= rest.length()) {
                pieces.add(new Piece(rest, offset)); // unfinished: JShell compiles it all and says why
                break;
            }
            pieces.add(new Piece(info.source(), offset)); // may end with a ';' that JShell added
            offset += rest.length() - info.remaining().length();
            rest = info.remaining();
        }
        return pieces;
    }

    private Object evalSnippet(String source, String code, int offset, String cellName) throws Exception {
        Object value = null;
        for (SnippetEvent event : jshell.eval(source)) {
            if (event.causeSnippet() != null) {
                continue; // a dependent snippet updated by this one
            }
            Snippet snippet = event.snippet();
            // JShell numbers a snippet's lines from its first non-blank character.
            int first = offset + source.length() - source.stripLeading().length();
            origins.put(snippet.id(), new Traceback.Origin(cellName, lineOf(code, first)));
            if (event.status() == Snippet.Status.REJECTED) {
                throw compilationError(snippet, code, offset, cellName);
            }
            if (event.exception() != null) {
                throw runtimeFailure(event.exception());
            }
            if (isExpression(snippet)) {
                value = control.takeResult(event.value());
            }
        }
        return value;
    }

    private static boolean isExpression(Snippet s) {
        return s.kind() == Snippet.Kind.EXPRESSION
                || (s.kind() == Snippet.Kind.VAR && s.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND);
    }

    private CompilationException compilationError(Snippet snippet, String code, int offset, String cellName) {
        List<Diag> diags = jshell.diagnostics(snippet).filter(Diag::isError).toList();
        if (diags.isEmpty()) {
            diags = jshell.diagnostics(snippet).toList();
        }
        List<String> report = new ArrayList<>();
        String message = null;
        for (Diag d : diags) {
            List<String> text = messageLines(d);
            if (message == null && !text.isEmpty()) {
                message = text.get(0);
            }
            report.addAll(text);
            report.addAll(SourcePointer.lines(code, cellName,
                    offset + (int) Math.max(d.getPosition(), 0),
                    offset + (int) Math.max(d.getStartPosition(), 0),
                    offset + (int) Math.max(d.getEndPosition(), 0)));
        }
        if (message == null) {
            message = "the snippet was rejected: " + snippet.source().strip();
            report.add(message);
        }
        return new CompilationException(message, report);
    }

    private static List<String> messageLines(Diag d) {
        List<String> lines = new ArrayList<>();
        for (String line : d.getMessage(null).split("\\R")) {
            // JShell's wrapper class has no name; "location: class " would only puzzle.
            if (!line.strip().equals("location: class")) {
                lines.add(line);
            }
        }
        return lines;
    }

    private Exception runtimeFailure(JShellException ex) {
        Throwable thrown = control.takeThrown();
        if (control.wasStopped() && thrown instanceof ThreadDeath || thrown instanceof Interrupts.Stop) {
            return new CellInterruptedException();
        }
        if (ex instanceof UnresolvedReferenceException unresolved) {
            DeclarationSnippet s = unresolved.getSnippet();
            String message = s.name() + " cannot be used until "
                    + String.join(", ", jshell.unresolvedDependencies(s).toList()) + " is declared";
            List<String> report = new ArrayList<>();
            report.add(message);
            for (StackTraceElement e : ex.getStackTrace()) {
                report.add("    at " + Traceback.frame(e, origins));
            }
            return new CompilationException(message, report);
        }
        if (thrown == null) {
            // Should not happen; report what JShell has.
            String name = ex instanceof EvalException ee ? ee.getExceptionClassName() : ex.getClass().getName();
            thrown = new RuntimeException(name + ": " + ex.getMessage());
            thrown.setStackTrace(new StackTraceElement[0]);
        }
        List<String> report = Traceback.lines(thrown, ex, origins);
        if (thrown instanceof Exception e) {
            lastFailure = e;
            lastTraceback = report;
            return e;
        }
        return new UserCodeError(thrown, report);
    }

    /** The traceback lines of the exception the last cell threw, or null if {@code e} is not that one. */
    public List<String> traceback(Exception e) {
        return e != null && e == lastFailure ? lastTraceback : null;
    }

    private static int lineOf(String code, int offset) {
        int line = 1;
        for (int i = 0; i < offset && i < code.length(); i++) {
            if (code.charAt(i) == '\n') {
                line++;
            }
        }
        return line;
    }

    /** Jupyter's is_complete: "complete", "invalid", or the indent for the next line when unfinished. */
    public String isComplete(String code) {
        String rest = code;
        while (true) {
            CompletionInfo info = analysis.analyzeCompletion(rest);
            switch (info.completeness()) {
                case EMPTY:
                    return "complete";
                case DEFINITELY_INCOMPLETE:
                case CONSIDERED_INCOMPLETE:
                    return "   ";
                case UNKNOWN:
                    return "invalid";
                default:
                    if (info.remaining().isBlank() || info.remaining().length() >= rest.length()) {
                        return "complete";
                    }
                    rest = info.remaining();
            }
        }
    }

    /**
     * Completions at {@code at}. JShell completes the snippet around the cursor against what the session
     * has run; when that finds nothing, the cell's text up to the cursor is tried as a whole, which also
     * sees variables declared earlier in the same, not yet run, cell.
     */
    public ReplacementOptions complete(String code, int at) {
        int cursor = Math.max(0, Math.min(at, code.length()));
        String before = code.substring(0, cursor);
        String rest = before;
        int offset = 0;
        while (true) {
            CompletionInfo info = analysis.analyzeCompletion(rest);
            if (!info.completeness().isComplete() || info.remaining().isBlank()
                    || info.remaining().length() >= rest.length()) {
                break;
            }
            offset += rest.length() - info.remaining().length();
            rest = info.remaining();
        }
        int[] anchor = new int[1];
        List<SourceCodeAnalysis.Suggestion> suggestions = analysis.completionSuggestions(rest, rest.length(), anchor);
        int start = offset + anchor[0];
        if (suggestions.isEmpty() && offset > 0) {
            suggestions = analysis.completionSuggestions(before, before.length(), anchor);
            start = anchor[0];
        }
        // Suggestions that fit the expected type first, each once.
        Set<String> options = new LinkedHashSet<>();
        suggestions.stream().filter(SourceCodeAnalysis.Suggestion::matchesType).forEach(s -> options.add(s.continuation()));
        suggestions.forEach(s -> options.add(s.continuation()));
        return new ReplacementOptions(new ArrayList<>(options), start, cursor);
    }

    /**
     * What Shift-Tab shows for the code at {@code at}: the signatures (and Javadoc, where the sources are at hand, as
     * the JDK's src.zip is) of the method or type there; a name without its parenthesis is looked up as a call too.
     * Null when nothing is known there.
     */
    public String inspect(String code, int at) {
        int cursor = Math.max(0, Math.min(at, code.length()));
        // the identifier the cursor is in or after, up to its end
        int end = cursor;
        while (end < code.length() && Character.isJavaIdentifierPart(code.charAt(end))) {
            end++;
        }
        String before = lastSnippet(code.substring(0, end));
        List<SourceCodeAnalysis.Documentation> docs = analysis.documentation(before, before.length(), true);
        if (docs.isEmpty() && !before.isEmpty() && Character.isJavaIdentifierPart(before.charAt(before.length() - 1))) {
            docs = analysis.documentation(before + "(", before.length() + 1, true);
        }
        if (docs.isEmpty()) {
            return null;
        }
        StringBuilder out = new StringBuilder();
        for (SourceCodeAnalysis.Documentation d : docs) {
            out.append(out.length() == 0 ? "" : "\n").append(d.signature()).append('\n');
            if (d.javadoc() != null && !d.javadoc().isBlank()) {
                out.append('\n').append(d.javadoc().strip()).append('\n');
            }
        }
        return out.toString();
    }

    /** The last complete-or-not snippet of {@code code}, as JShell splits it (what a cursor at its end belongs to). */
    private String lastSnippet(String code) {
        String rest = code;
        while (true) {
            CompletionInfo info = analysis.analyzeCompletion(rest);
            if (!info.completeness().isComplete() || info.remaining().isBlank() || info.remaining().length() >= rest.length()) {
                return rest;
            }
            rest = info.remaining();
        }
    }

    /** Adds jars or class folders (separated by the path separator) for both compiler and loader. */
    public void addToClasspath(String path) {
        jshell.addToClasspath(path);
    }

    /** Interrupts the running cell; safe from any thread. */
    public void interrupt() {
        control.interrupt();
    }

    @Override
    public void close() {
        jshell.close();
    }
}
