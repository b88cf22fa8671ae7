package dev.longtune.report;

import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.Units;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.List;

/** The cheapest-first list of technique sets as a table. */
public final class Candidates {
    private Candidates() {}

    public static Table table(List<ContextSearch.Candidate> candidates, int top) {
        StringColumn stack = StringColumn.create("techniques");
        IntColumn offloads = IntColumn.create("offloads");
        DoubleColumn gpu = DoubleColumn.create("GPU peak GiB"), host = DoubleColumn.create("host peak GiB"),
                tok = DoubleColumn.create("tokens/s");
        for (ContextSearch.Candidate c : candidates.subList(0, Math.min(top, candidates.size()))) {
            stack.append(c.stack().describe());
            offloads.append(c.offloads());
            gpu.append(Math.round(Units.gib(c.plan().gpuPeakBytes()) * 100) / 100.0);
            host.append(Math.round(Units.gib(c.plan().hostPeakBytes()) * 100) / 100.0);
            tok.append(Math.round(c.throughput().tokensPerSecond()));
        }
        return Table.create("cheapest first").addColumns(stack, offloads, gpu, host, tok);
    }
}
