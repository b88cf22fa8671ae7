package dev.longtune.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import io.github.spencerpark.jupyter.kernel.ReplacementOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The evaluator alone: JShell in this JVM, no Jupyter connection. */
public class CellEvaluatorTest {
    /** Reached from a cell: proves cells see the very classes (and objects) of the kernel's loader. */
    public static final List<String> SHARED = new ArrayList<>(List.of("shared"));
    /** Training steps a cell has finished (the interrupt test waits for some before interrupting). */
    public static final java.util.concurrent.atomic.AtomicInteger STEPS = new java.util.concurrent.atomic.AtomicInteger();

    private static CellEvaluator evaluator;
    private static ExecutorService background;

    @BeforeAll
    static void start() {
        evaluator = new CellEvaluator(CellEvaluatorTest.class.getClassLoader(), Duration.ofMillis(500));
        background = Executors.newSingleThreadExecutor();
    }

    @AfterAll
    static void stop() {
        evaluator.close();
        background.shutdownNow();
    }

    private static Object eval(String code) throws Exception {
        return evaluator.eval(code, "In[t]");
    }

    @Test
    void anExpressionGivesItsLiveObject() throws Exception {
        assertThat(eval("1 + 1")).isEqualTo(2);
        Object list = eval("new java.util.ArrayList<>(java.util.List.of(\"a\", \"b\"))");
        assertThat(list).isInstanceOf(ArrayList.class).asList().containsExactly("a", "b");
        assertThat(eval("dev.longtune.kernel.CellEvaluatorTest.SHARED")).isSameAs(SHARED);
        assertThat(eval("java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(2, 2, 1);\nimg"))
                .isInstanceOf(java.awt.image.BufferedImage.class);
    }

    @Test
    void aCellIsSplitIntoSnippetsAndItsValueIsTheLastExpression() throws Exception {
        assertThat(eval("int a = 6;\nint b = 7;   a * b")).isEqualTo(42);
        assertThat(eval("a + b")).isEqualTo(13);
        assertThat(eval("String twice(String s) {\n  return s + s;\n}\ntwice(\"ab\")")).isEqualTo("abab");
        assertThat(eval("twice(\"x\").length()")).isEqualTo(2);
        assertThat(eval("record Point(int x, int y) {}\nnew Point(1, 2).y()")).isEqualTo(2);
        assertThat(eval("1 + 1 // a note")).isEqualTo(2);
        assertThat(eval("/* before */ 2 + 1\n// after")).isEqualTo(3);
        assertThat(eval("int[] arr = {1, 2};\nfor (int v : arr) {\n  arr[0] += v;\n}\narr[0]")).isEqualTo(4);
    }

    @Test
    void declarationsStatementsAndVoidGiveNoValue() throws Exception {
        assertThat(eval("int declared = 5;")).isNull();
        assertThat(eval("int declaredToo = 5")).isNull();
        assertThat(eval("void nothing() {}")).isNull();
        assertThat(eval("nothing()")).isNull();
        assertThat(eval("if (declared > 1) { declared++; }")).isNull();
        assertThat(eval("42;\nint later = 1;")).isNull();
        assertThat(eval("// only a comment")).isNull();
        assertThat(eval("   \n")).isNull();
        assertThat(eval("declared")).isEqualTo(6);
    }

    @Test
    void printsFromCellsGoToTheCurrentSystemOut() throws Exception {
        PrintStream original = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            eval("System.out.println(\"hello from a cell\");\nSystem.out.print(40 + 2)");
        } finally {
            System.setOut(original);
        }
        assertThat(captured.toString(StandardCharsets.UTF_8)).isEqualTo("hello from a cell\n42");
    }

    @Test
    void aCompileErrorNamesTheProblemAndPointsAtTheLine() {
        Throwable t = catchThrowable(() -> evaluator.eval("int ok = 1;\nint y = missingName + 1;\nok", "In[7]"));
        assertThat(t).isInstanceOf(CompilationException.class).hasMessage("cannot find symbol");
        List<String> report = ((CompilationException) t).report();
        assertThat(report).containsSubsequence(
                "cannot find symbol",
                "  symbol:   variable missingName",
                "In[7] line 2:",
                "    int y = missingName + 1;",
                "            ^^^^^^^^^^^");
        assertThat(report).noneMatch(l -> l.strip().equals("location: class"));
    }

    @Test
    void unfinishedCodeIsACompileError() {
        Throwable t = catchThrowable(() -> eval("for (int i = 0; i < 3; i++) {\n  i++;"));
        assertThat(t).isInstanceOf(CompilationException.class);
        assertThat(((CompilationException) t).report()).contains("In[t] line 2:", "      i++;");
    }

    @Test
    void aRuntimeExceptionIsTheUsersOwnWithFramesInCellLines() throws Exception {
        evaluator.eval("void fail(String why) {\n  throw new IllegalStateException(why);\n}", "In[1]");
        Throwable t = catchThrowable(() -> evaluator.eval("int n = 1;\n\nfail(\"boom \" + n)", "In[2]"));
        assertThat(t).isExactlyInstanceOf(IllegalStateException.class).hasMessage("boom 1");
        List<String> traceback = evaluator.traceback((Exception) t);
        assertThat(traceback).containsExactly(
                "java.lang.IllegalStateException: boom 1",
                "    at fail (In[1] line 2)",
                "    at In[2] line 3");
        // The kernel lives on.
        assertThat(eval("n + 1")).isEqualTo(2);
    }

    @Test
    void causesAndLibraryFramesAreShown() {
        Throwable t = catchThrowable(() -> eval(
                "try { Integer.parseInt(\"x\"); } catch (NumberFormatException e) { throw new RuntimeException(\"wrapped\", e); }"));
        assertThat(t).isExactlyInstanceOf(RuntimeException.class).hasCauseInstanceOf(NumberFormatException.class);
        List<String> traceback = evaluator.traceback((Exception) t);
        assertThat(traceback.get(0)).isEqualTo("java.lang.RuntimeException: wrapped");
        assertThat(traceback).contains("Caused by: java.lang.NumberFormatException: For input string: \"x\"");
        assertThat(traceback).anyMatch(l -> l.contains("java.lang.Integer.parseInt"));
        assertThat(traceback).noneMatch(l -> l.contains("jdk.jshell") || l.contains("reflect")
                || l.contains("LiveExecutionControl"));
    }

    @Test
    void anErrorArrivesWrappedWithItsNameInTheReport() throws Exception {
        eval("int deep(int n) { return deep(n + 1) + 1; }");
        Throwable t = catchThrowable(() -> eval("deep(0)"));
        assertThat(t).isInstanceOf(UserCodeError.class).hasCauseInstanceOf(StackOverflowError.class);
        List<String> report = ((UserCodeError) t).report();
        assertThat(report.get(0)).isEqualTo("java.lang.StackOverflowError");
        assertThat(report.get(1)).isEqualTo("    at deep (In[t] line 1)");
        assertThat(report).hasSizeLessThan(50).last().asString().startsWith("    ... ");
        assertThat(eval("\"still alive\"")).isEqualTo("still alive");
    }

    @Test
    void aMissingDeclarationIsReportedByName() throws Exception {
        eval("void later() { notYetDeclared(); }");
        assertThatThrownBy(() -> eval("later()"))
                .isInstanceOf(CompilationException.class)
                .hasMessage("later cannot be used until method notYetDeclared() is declared");
    }

    @Test
    void interruptStopsABusyLoopAndTheNextCellWorks() throws Exception {
        Future<Object> running = background.submit(() -> eval("long spins = 0;\nwhile (true) { spins++; }"));
        Thread.sleep(300);
        assertThat(running).isNotDone();
        long start = System.nanoTime();
        evaluator.interrupt();
        Throwable t = catchThrowable(() -> running.get(10, TimeUnit.SECONDS));
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertThat(t).hasCauseInstanceOf(CellInterruptedException.class);
        assertThat(ms).isLessThan(5_000);
        assertThat(eval("spins > 0")).isEqualTo(true);
        assertThat(eval("1 + 2")).isEqualTo(3);
    }

    @Test
    void interruptWakesASleepingCellWithInterruptedException() throws Exception {
        Future<Object> running = background.submit(() -> eval("Thread.sleep(60_000);\n\"not reached\""));
        Thread.sleep(300);
        evaluator.interrupt();
        Throwable t = catchThrowable(() -> running.get(10, TimeUnit.SECONDS));
        assertThat(t).hasCauseInstanceOf(InterruptedException.class);
        assertThat(eval("\"next\"")).isEqualTo("next");
    }

    /**
     * The interrupt button during a training loop: the step in progress ends at its next layer boundary and is
     * abandoned, never stopped halfway (here a layer runs past the stop grace, ignoring interrupts, as a long layer
     * on a GPU would); the trainer counts only the finished steps and holds the memory it held before the loop.
     */
    @Test
    void interruptingATrainingLoopLeavesTheTrainerAsAfterItsLastFullStep() throws Exception {
        eval("""
                var cfg = dev.longtune.config.ModelConfig.parse("tiny", new java.io.ByteArrayInputStream((
                    "{\\"model_type\\": \\"llama\\", \\"hidden_size\\": 64, \\"intermediate_size\\": 96, "
                    + "\\"num_hidden_layers\\": 4, \\"num_attention_heads\\": 4, \\"num_key_value_heads\\": 2, "
                    + "\\"vocab_size\\": 50}").getBytes()), "test");
                var model = new dev.longtune.model.LlamaModel(cfg, new dev.longtune.device.CpuDevice(),
                    dev.longtune.config.Precision.FP32, dev.longtune.config.Checkpointing.DEVICE);
                model.initialize(3);
                var trainer = new dev.longtune.train.Trainer(model, dev.longtune.train.TrainingConfig.defaults(1000),
                    dev.longtune.config.Precision.FP32);
                var batch = java.util.List.of(dev.longtune.model.Batch.ofDocument(new java.util.Random(1).ints(200, 0, 50).toArray()));
                trainer.step(batch);
                java.util.function.Supplier<java.util.List<Long>> held = () -> java.util.Arrays.stream(
                    dev.longtune.tensor.MemoryCategory.values()).map(c -> model.device().memory().current(c)).toList();
                var before = held.get();
                int finished = 0;
                model.setLayerListener((pass, layer, n) -> {
                    if (Thread.currentThread().isInterrupted()) {
                        long until = System.nanoTime() + 1_500_000_000L; // a slow layer: past the 500 ms stop grace
                        while (System.nanoTime() < until) { }
                    }
                });
                """);
        Future<Object> running = background.submit(() -> eval("for (int s = 0; s < 100_000; s++) { trainer.step(batch); finished++; "
                + "dev.longtune.kernel.CellEvaluatorTest.STEPS.incrementAndGet(); }"));
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (STEPS.get() < 2 && System.nanoTime() < deadline) { // a loaded machine takes a while for the first steps
            Thread.sleep(50);
        }
        assertThat(running).isNotDone();
        evaluator.interrupt();
        Throwable t = catchThrowable(() -> running.get(30, TimeUnit.SECONDS));
        // the step in progress ends at a layer boundary; an interrupt between two steps, at the loop's own check
        assertThat(t.getCause()).isInstanceOfAny(dev.longtune.model.StepInterruptedException.class, CellInterruptedException.class);
        assertThat((Integer) eval("finished")).isPositive();
        assertThat(eval("trainer.step() == finished + 1")).as("only finished steps are counted").isEqualTo(true);
        assertThat(eval("held.get().equals(before)")).as("memory by category as before the loop").isEqualTo(true);
        assertThat(eval("model.setLayerListener((p, l, n) -> { });\ntrainer.step(batch).step()")).isEqualTo((Integer) eval("finished") + 2);
    }

    @Test
    void onlyATrainingStepIsLeftToAnswerTheInterruptItself() {
        StackTraceElement step = new StackTraceElement("dev.longtune.train.Trainer", "step", "Trainer.java", 90);
        StackTraceElement loop = new StackTraceElement("REPL.$JShell$12", "do_it$", null, 1);
        assertThat(LiveExecutionControl.answersInterruptsItself(new StackTraceElement[] {step, loop})).isTrue();
        assertThat(LiveExecutionControl.answersInterruptsItself(new StackTraceElement[] {loop})).isFalse();
    }

    @Test
    void isCompleteTellsCompleteIncompleteAndInvalid() {
        assertThat(evaluator.isComplete("int x = 1;")).isEqualTo("complete");
        assertThat(evaluator.isComplete("int x = 1; x + 1")).isEqualTo("complete");
        assertThat(evaluator.isComplete("")).isEqualTo("complete");
        assertThat(evaluator.isComplete("for (int i = 0; i < 3; i++) {")).isEqualTo("   ");
        assertThat(evaluator.isComplete("int y = 1;\nclass A {\n  int f;")).isEqualTo("   ");
        assertThat(evaluator.isComplete("int x = 1; )")).isEqualTo("invalid");
        assertThat(evaluator.isComplete("}")).isEqualTo("invalid");
    }

    @Test
    void completionCompletesTheSnippetAtTheCursor() {
        String code = "String s = \"x\"; s.len";
        ReplacementOptions options = evaluator.complete(code, code.length());
        assertThat(options.getReplacements()).contains("length()");
        assertThat(options.getSourceStart()).isEqualTo(code.indexOf("len"));
        assertThat(options.getSourceEnd()).isEqualTo(code.length());

        String twoLines = "int first = 1;\nMath.ab";
        ReplacementOptions abs = evaluator.complete(twoLines + "\nmore();", twoLines.length());
        assertThat(abs.getReplacements()).contains("abs(");
        assertThat(abs.getSourceStart()).isEqualTo(twoLines.indexOf("ab"));
        assertThat(abs.getSourceEnd()).isEqualTo(twoLines.length());
    }

    @Test
    void completionSeesWhatEarlierCellsDeclared() throws Exception {
        eval("class Box { int volume; }\nBox box = new Box();");
        String code = "int other = 2;\nbox.vol";
        ReplacementOptions options = evaluator.complete(code, code.length());
        assertThat(options.getReplacements()).containsExactly("volume");
        assertThat(options.getSourceStart()).isEqualTo(code.indexOf("vol"));
    }
}
