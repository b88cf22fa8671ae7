package dev.longtune.cli;

import dev.longtune.plan.ContextSearch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "max-context", mixinStandardHelpOptions = true,
        description = "The longest context that fits the node's GPUs and host RAM with a technique set.")
public class MaxContextCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Mixin PlanOptions options;

    @Option(names = "--json", description = "print JSON") boolean json;

    @Override
    public Integer call() {
        var t = options.techniques();
        long max = new ContextSearch(options.profile()).maxContext(options.model(), options.node(), t);
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("model", options.model().name());
            out.put("node", options.node().name());
            out.put("profile", options.profile().id);
            out.put("stack", t.describe());
            out.put("max_context", max);
            out().println(Json.write(out));
        } else {
            out().printf(Locale.ROOT, "%s on %s (%s, %s): max context %,d tokens%n", options.model().name(),
                    options.node().name(), options.profile().id, t.describe(), max);
        }
        return 0;
    }
}
