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
    void theEngineRunsTheEngineStackAndNotAll() {
        var node = NodeCatalog.get("1xH200");
        assertThat(EngineSupport.missing(Stacks.named("engine", node, EngineProfile.LONGTUNE), node)).isEmpty();
        assertThat(EngineSupport.missing(Stacks.named("all", node, EngineProfile.LONGTUNE), node))
                .anyMatch(r -> r.contains("parameter offload")).anyMatch(r -> r.contains("ZeRO-3"));
        assertThat(EngineSupport.missing(Stacks.named("all-tiled", node, EngineProfile.LONGTUNE), node))
                .anyMatch(r -> r.contains("tiling"));
        assertThat(EngineSupport.missing(Stacks.named("engine", node, EngineProfile.LONGTUNE), NodeCatalog.get("2xH200")))
                .isEmpty(); // the stack itself asks for one GPU
        assertThat(EngineSupport.missing(Stacks.named("all", NodeCatalog.get("2xH200"), EngineProfile.LONGTUNE),
                NodeCatalog.get("2xH200"))).anyMatch(r -> r.contains("one GPU"));
        assertThat(EngineSupport.missing(Stacks.named("fa2", node, EngineProfile.LONGTUNE)
                .withAttention(dev.longtune.config.Attention.SDPA), node)).anyMatch(r -> r.contains("sdpa"));
    }

    @Test
    void adviceQuotesTheEngineStacksLongestContextNotAlls() {
        long cap = 48L << 30, host = 512L << 30;
        String advice = PlannerAdvice.forRun("llama-3.1-8b", cap, 131072, host);
        assertThat(advice).contains("zero1+opt ").doesNotContain("+param").doesNotContain("tile=").contains("--stack engine");
        Matcher m = Pattern.compile("fits at most ([0-9,]+) tokens").matcher(advice);
        assertThat(m.find()).as(advice).isTrue();
        long quoted = Long.parseLong(m.group(1).replace(",", ""));
        var node = PlannerAdvice.cappedNode(cap, host);
        var llama = ModelCatalog.get("llama-3.1-8b");
        var search = new ContextSearch(EngineProfile.LONGTUNE);
        assertThat(quoted).isEqualTo(search.maxContext(llama, node, Stacks.named("engine", node, EngineProfile.LONGTUNE)));
        // what the old advice quoted: 'all' plans parameter offload and fits far more than the engine can train
        assertThat(search.maxContext(llama, node, Stacks.named("all", node, EngineProfile.LONGTUNE))).isGreaterThan(quoted);
        // the cap bounds the allocator; the CUDA context lies outside it
        assertThat(PlannerAdvice.allocatorBytes(node)).isEqualTo(cap);
    }
}
