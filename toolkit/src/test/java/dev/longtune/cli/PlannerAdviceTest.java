package dev.longtune.cli;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.EngineSupport;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Stacks;
import dev.longtune.plan.ContextSearch;
import org.junit.jupiter.api.Test;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

class PlannerAdviceTest {
    @Test
    void theEngineRunsItsStacksWithParameterOffloadOnOneGpu() {
        var node = NodeCatalog.get("1xH200");
        var engine = Stacks.named("engine", node, EngineProfile.LONGTUNE);
        assertThat(engine.offloadParameters()).isTrue();
        assertThat(engine.offloadOptimizer()).isTrue();
        assertThat(EngineSupport.missing(engine, node)).isEmpty();
        assertThat(EngineSupport.missing(Stacks.engineResident(node, EngineProfile.LONGTUNE), node)).isEmpty();
        // 'all' on one GPU is what the engine runs (ZeRO-3 = parameter offload there), and with tiling too
        assertThat(EngineSupport.missing(Stacks.named("all", node, EngineProfile.LONGTUNE), node)).isEmpty();
        assertThat(EngineSupport.missing(Stacks.named("all-tiled", node, EngineProfile.LONGTUNE), node)).isEmpty();
        // parameter offload needs the optimizer on the host, and ZeRO-3 with resident weights is not the engine's
        assertThat(EngineSupport.missing(engine.withZero(3, false, true), node)).anyMatch(r -> r.contains("optimizer"));
        assertThat(EngineSupport.missing(engine.withZero(3, true, false), node)).anyMatch(r -> r.contains("ZeRO-3"));
        assertThat(EngineSupport.missing(Stacks.named("engine", node, EngineProfile.LONGTUNE), NodeCatalog.get("2xH200")))
                .isEmpty(); // the stack itself asks for one GPU
        assertThat(EngineSupport.missing(Stacks.named("all", NodeCatalog.get("2xH200"), EngineProfile.LONGTUNE),
                NodeCatalog.get("2xH200"))).anyMatch(r -> r.contains("one GPU"));
        assertThat(EngineSupport.missing(Stacks.named("fa2", node, EngineProfile.LONGTUNE)
                .withAttention(dev.longtune.config.Attention.SDPA), node)).anyMatch(r -> r.contains("sdpa"));
    }

    static long quoted(String advice) {
        Matcher m = Pattern.compile("fits at most ([0-9,]+) tokens").matcher(advice);
        assertThat(m.find()).as(advice).isTrue();
        return Long.parseLong(m.group(1).replace(",", ""));
    }

    @Test
    void adviceQuotesTheResidentStackWhenTheContextFitsIt() {
        long cap = 48L << 30, host = 512L << 30;
        var node = PlannerAdvice.cappedNode(cap, host);
        var llama = ModelCatalog.get("llama-3.1-8b");
        var search = new ContextSearch(EngineProfile.LONGTUNE);
        long resident = search.maxContext(llama, node, Stacks.engineResident(node, EngineProfile.LONGTUNE));
        assertThat(resident).isGreaterThan(8192);
        String advice = PlannerAdvice.forRun("llama-3.1-8b", cap, 8192, host);
        assertThat(advice).contains("zero1+opt ").doesNotContain("+param").doesNotContain("tile=").contains("--stack engine");
        assertThat(quoted(advice)).isEqualTo(resident);
        // the cap bounds the allocator; the CUDA context lies outside it
        assertThat(PlannerAdvice.allocatorBytes(node)).isEqualTo(cap);
    }

    @Test
    void adviceOffloadsTheParametersWhenTheResidentStackDoesNotFit() {
        long cap = 16L << 30, host = 256L << 30;
        var node = PlannerAdvice.cappedNode(cap, host);
        var llama = ModelCatalog.get("llama-3.1-8b");
        var search = new ContextSearch(EngineProfile.LONGTUNE);
        // 15 GiB of resident 16-bit weights and 15 GiB of gradients: nothing fits 16 GiB resident
        assertThat(search.maxContext(llama, node, Stacks.engineResident(node, EngineProfile.LONGTUNE))).isZero();
        long offloaded = search.maxContext(llama, node, Stacks.named("engine", node, EngineProfile.LONGTUNE));
        // what bench/results/offload-8b-32k-16gib-h200.jsonl trained under a 16 GiB cap
        assertThat(offloaded).isGreaterThanOrEqualTo(32_768);
        String advice = PlannerAdvice.forRun("llama-3.1-8b", cap, 32_768, host);
        assertThat(advice).contains("zero3+opt+param").contains("--offload parameters,optimizer,checkpoints")
                .doesNotContain("lower --context");
        assertThat(quoted(advice)).isEqualTo(offloaded);
        // past that, the MLP in sequence tiles: 131,072 trained under this cap with --tile 8192 (bench/results)
        assertThat(PlannerAdvice.forRun("llama-3.1-8b", cap, 131_072, host)).contains("--tile 8192 (the MLP in sequence tiles")
                .doesNotContain("lower --context");
        assertThat(PlannerAdvice.forRun("llama-3.1-8b", cap, 1L << 20, host)).contains("--tile 8192, and lower --context");
    }
}
