package dev.longtune.cli;

import dev.longtune.report.ValidationTable;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "validate", mixinStandardHelpOptions = true,
        description = "The hf-deepspeed profile's predictions against the published study's measurements.")
public class ValidateCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Override
    public Integer call() {
        var table = new ValidationTable();
        out().print(table.text());
        return table.allWithinTolerance() ? 0 : 4;
    }
}
