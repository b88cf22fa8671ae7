package dev.longtune.cli;

import dev.longtune.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code longtune}: the command line. Bad input prints one line naming what to fix, exit code 2. */
@Command(name = "longtune", mixinStandardHelpOptions = true, versionProvider = LongtuneCommand.VersionProvider.class,
        description = "Plan and run full-parameter finetuning of long-context LLMs on commodity GPUs.",
        subcommands = {StudyCommand.class, TrainCommand.class, InspectCommand.class, PlanCommand.class, MaxContextCommand.class, CheapestCommand.class,
                ValidateCommand.class, DeepSpeedEstimateCommand.class, CommandLine.HelpCommand.class})
public class LongtuneCommand implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

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
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof IllegalArgumentException) {
                cmd.getErr().println("longtune " + cmd.getCommandName() + ": " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cli;
    }

    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() { return new String[] {"longtune " + Version.get()}; }
    }
}
