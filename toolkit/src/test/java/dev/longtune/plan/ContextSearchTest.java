package dev.longtune.plan;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class ContextSearchTest {
    final ModelConfig llama = ModelCatalog.get("llama-3.1-8b");
    final ContextSearch search = new ContextSearch(EngineProfile.HF_DEEPSPEED);
    final MemoryPlanner planner = new MemoryPlanner(EngineProfile.HF_DEEPSPEED);

    @Test
    void maxContextIsExactlyTheBoundary() {
        for (String node : new String[] {"study-8xV100", "study-4xA6000"}) {
            NodeProfile n = NodeCatalog.get(node);
            TechniqueSet t = Stacks.named("all", n, EngineProfile.HF_DEEPSPEED);
            long max = search.maxContext(llama, n, t);
            assertThat(max).as(node).isGreaterThan(49_152);
            assertThat(planner.plan(llama, n, t, max).fits()).isTrue();
            assertThat(planner.plan(llama, n, t, max + 1).fits()).isFalse();
        }
    }

    @Test
    void nothingFitsGivesZero() {
        NodeProfile one = NodeCatalog.get("1xV100");
        ModelConfig big = ModelCatalog.get("llama-3.1-70b");
        assertThat(search.maxContext(big, one, Stacks.named("baseline", one, EngineProfile.HF_DEEPSPEED))).isZero();
    }

    @Test
    void cheapestFitsAndHasTheFewestOffloads() {
        NodeProfile a6000 = NodeCatalog.get("study-4xA6000");
        var found = search.cheapest(llama, a6000, 32_768);
        assertThat(found).isNotEmpty();
        assertThat(found.get(0).plan().fits()).isTrue();
        assertThat(found.get(0).offloads()).isZero();
        assertThat(found).allSatisfy(c -> assertThat(c.offloads()).isGreaterThanOrEqualTo(found.get(0).offloads()));
        var longer = search.cheapest(llama, NodeCatalog.get("study-8xV100"), 131_072);
        assertThat(longer.get(0).offloads()).isGreaterThanOrEqualTo(2);
        assertThat(longer.get(0).plan().gpuPeakBytes()).isLessThanOrEqualTo(16L << 30);
    }
}
