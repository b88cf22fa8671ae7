package dev.longtune.cli;

import dev.longtune.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

/**
 * {@code longtune}: the command line. An expected failure (bad option value, missing or malformed file,
 * out of GPU memory) prints one line naming the input and the fix and exits 2; {@code --verbose} adds the
 * stack trace. Anything else is a bug: its stack trace and exit code 1.
 */
@Command(name = "longtune", mixinStandardHelpOptions = true, versionProvider = LongtuneCommand.VersionProvider.class,
        description = "Plan and run full-parameter finetuning of long-context LLMs on commodity GPUs.",
        subcommands = {StudyCommand.class, TrainCommand.class, InspectCommand.class, PlanCommand.class, MaxContextCommand.class, CheapestCommand.class,
                ValidateCommand.class, DeepSpeedEstimateCommand.class, CommandLine.HelpCommand.class})
public class LongtuneCommand implements Runnable {
    /** Exit code of an expected failure: the input was wrong, not the program. */
    public static final int BAD_INPUT = 2;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--verbose", scope = ScopeType.INHERIT, description = "on an error, print the stack trace too")
    boolean verbose;

    @Override
    public void run() { spec.commandLine().usage(System.out); }

    public static void main(String[] args) {
        CommandLine cli = commandLine();
        int code = cli.execute(args);
        cli.getOut().flush();
        cli.getErr().flush();
        System.exit(code);
    }

    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new LongtuneCommand());
        cli.setParameterExceptionHandler((e, args) -> {
            CommandLine cmd = e.getCommandLine();
            PrintWriter err = cmd.getErr();
            err.println(prefix(cmd) + e.getMessage() + " (see '" + cmd.getCommandSpec().qualifiedName() + " --help')");
            if (verbose(cmd)) {
                e.printStackTrace(err);
            }
            err.flush();
            return BAD_INPUT;
        });
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            String line = expectedFailure(e);
            if (line == null) {
                throw e;
            }
            PrintWriter err = cmd.getErr();
            err.println(prefix(cmd) + line);
            if (verbose(cmd)) {
                e.printStackTrace(err);
            }
            err.flush();
            return BAD_INPUT;
        });
        return cli;
    }

    /** The one line an expected failure prints, or null when the exception is a bug. */
    static String expectedFailure(Throwable e) {
        if (e instanceof UncheckedIOException u) {
            e = u.getCause();
        }
        if (e instanceof NoSuchFileException n) {
            return "no such file or folder: " + n.getFile() + " (check the path)";
        }
        if (e instanceof AccessDeniedException a) {
            return "cannot read or write " + a.getFile() + ": permission denied";
        }
        if (e instanceof IOException || e instanceof IllegalArgumentException
                || e instanceof dev.longtune.tensor.OutOfMemoryException) {
            return e.getMessage() == null ? e.toString() : e.getMessage().strip().replaceAll("\\s*\\R\\s*", " ");
        }
        return null;
    }

    private static String prefix(CommandLine cmd) { return "longtune " + cmd.getCommandName() + ": "; }

    private static boolean verbose(CommandLine cmd) {
        CommandLine root = cmd;
        while (root.getParent() != null) {
            root = root.getParent();
        }
        // an inherited option sets the root's field wherever it is given
        return root.getCommand() instanceof LongtuneCommand l && l.verbose;
    }

    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() { return new String[] {"longtune " + Version.get()}; }
    }
}
