package dev.longtune.cli;

import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.Units;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "cheapest", mixinStandardHelpOptions = true,
        description = "Technique sets that fit a target context, cheapest first (fewest offloads, then fastest).")
public class CheapestCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Mixin PlanOptions options;

    @Option(names = "--context", required = true, description = "target tokens per sequence, e.g. 131072 or 128K")
    String context;

    @Option(names = "--top", defaultValue = "5", description = "how many to list; default ${DEFAULT-VALUE}")
    int top;

    @Option(names = "--json", description = "print JSON") boolean json;

    @Override
    public Integer call() {
        long tokens = Units.parseTokens(context);
        var found = new ContextSearch(options.profile()).cheapest(options.model(), options.node(), tokens);
        if (json) {
            List<Map<String, Object>> rows = new ArrayList<>();
            for (var c : found.subList(0, Math.min(top, found.size()))) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("stack", c.stack().describe());
                row.put("offloads", c.offloads());
                row.put("gpu_peak_bytes", c.plan().gpuPeakBytes());
                row.put("host_peak_bytes", c.plan().hostPeakBytes());
                row.put("tokens_per_s", Math.round(c.throughput().tokensPerSecond()));
                rows.add(row);
            }
            out().println(Json.write(Map.of("context", tokens, "candidates", rows)));
        } else if (found.isEmpty()) {
            out().printf(Locale.ROOT, "nothing fits %,d tokens of %s on %s: try more GPUs or a smaller model%n",
                    tokens, options.model().name(), options.node().name());
        } else {
            out().printf(Locale.ROOT, "%s on %s at %,d tokens (%s), cheapest first:%n", options.model().name(),
                    options.node().name(), tokens, options.profile().id);
            for (var c : found.subList(0, Math.min(top, found.size()))) {
                out().printf(Locale.ROOT, "  %d offloads  GPU %s  host %s  %,.0f tok/s  %s%n", c.offloads(),
                        Units.human(c.plan().gpuPeakBytes()), Units.human(c.plan().hostPeakBytes()),
                        c.throughput().tokensPerSecond(), c.stack().describe());
            }
        }
        return found.isEmpty() ? 3 : 0;
    }
}
