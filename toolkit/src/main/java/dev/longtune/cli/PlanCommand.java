package dev.longtune.cli;

import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.MemoryPlanner;
import dev.longtune.plan.Throughput;
import dev.longtune.plan.ThroughputModel;
import dev.longtune.plan.Units;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Predicts GPU and host memory by category and phase, and tokens/s, for one context length.")
public class PlanCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Mixin PlanOptions options;

    @Option(names = "--context", required = true, description = "tokens per sequence, e.g. 65536 or 64K")
    String context;

    @Option(names = "--json", description = "print one JSON object instead of the table")
    boolean json;

    @Override
    public Integer call() {
        var techniques = options.techniques();
        long tokens = Units.parseTokens(context);
        MemoryPlan plan = new MemoryPlanner(options.profile()).plan(options.model(), options.node(), techniques, tokens);
        Throughput speed = new ThroughputModel(options.profile()).estimate(options.model(), options.node(), techniques, tokens);
        if (json) {
            out().println(Json.write(plan.toJson(speed)));
        } else {
            out().print(plan.describe());
            out().printf(Locale.ROOT, "Throughput: %,.0f tokens/s (%.3g FLOPs/token; per step %.2f s compute, "
                            + "%.2f s exposed transfers, %.2f s optimizer)%n", speed.tokensPerSecond(),
                    speed.flopsPerToken(), speed.computeSeconds(), speed.exposedSeconds(), speed.optimizerSeconds());
        }
        return plan.fits() ? 0 : 3;
    }
}
