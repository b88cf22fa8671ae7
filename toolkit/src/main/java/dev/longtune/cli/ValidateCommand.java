package dev.longtune.cli;

import dev.longtune.report.ValidationTable;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "validate", mixinStandardHelpOptions = true,
        description = "The hf-deepspeed profile's predictions against the published study's measurements.")
public class ValidateCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        var table = new ValidationTable();
        System.out.print(table.text());
        return table.allWithinTolerance() ? 0 : 4;
    }
}
