package dev.longtune.cli;

import dev.longtune.config.ModelCatalog;
import dev.longtune.plan.DeepSpeedEstimate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

@Command(name = "deepspeed-estimate", mixinStandardHelpOptions = true,
        description = "DeepSpeed's estimate_zero3_model_states_mem_needs_all_live table, reproduced.")
public class DeepSpeedEstimateCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Option(names = "--model", defaultValue = "llama-3.1-8b", description = "model preset or config.json; default ${DEFAULT-VALUE}")
    String model;

    @Option(names = "--gpus-per-node", defaultValue = "8", description = "default ${DEFAULT-VALUE}")
    int gpusPerNode;

    @Option(names = "--nodes", defaultValue = "1", description = "default ${DEFAULT-VALUE}")
    int nodes;

    @Override
    public Integer call() {
        out().print(new DeepSpeedEstimate(ModelCatalog.get(model), gpusPerNode, nodes).table());
        return 0;
    }
}
