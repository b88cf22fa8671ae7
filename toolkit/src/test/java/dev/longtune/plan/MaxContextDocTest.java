package dev.longtune.plan;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Stacks;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** docs/memory-model.md §7's max-context table is what `longtune max-context` prints. */
class MaxContextDocTest {
    static final List<String> COLUMNS = List.of("study-8xV100 hf-deepspeed", "study-8xV100 longtune",
            "study-4xA6000 hf-deepspeed", "study-4xA6000 longtune");

    @Test
    void theDocsTableMatchesThePlanner() throws Exception {
        Path doc = Path.of("../docs/memory-model.md");
        if (!Files.exists(doc)) {
            doc = Path.of("docs/memory-model.md");
        }
        List<String> lines = Files.readAllLines(doc);
        int header = lines.indexOf("| stack | 8×V100 hf-deepspeed | 8×V100 longtune | 4×A6000 hf-deepspeed | 4×A6000 longtune |");
        assertThat(header).as("the §7 table's header").isNotNegative();
        var llama = ModelCatalog.get("llama-3.1-8b");
        int rows = 0;
        for (int i = header + 2; i < lines.size() && lines.get(i).startsWith("|"); i++, rows++) {
            String[] cells = lines.get(i).split("\\|");
            String stack = cells[1].trim();
            for (int c = 0; c < COLUMNS.size(); c++) {
                String[] nodeAndProfile = COLUMNS.get(c).split(" ");
                var node = NodeCatalog.get(nodeAndProfile[0]);
                var profile = EngineProfile.parse(nodeAndProfile[1]);
                var t = Stacks.named(stack, node, profile);
                String expected = t.problems(node, profile).isEmpty()
                        ? String.format(java.util.Locale.ROOT, "%,d", new ContextSearch(profile).maxContext(llama, node, t))
                        : "invalid";
                assertThat(cells[c + 2].trim()).as(stack + " on " + COLUMNS.get(c)).isEqualTo(expected);
            }
        }
        assertThat(rows).isEqualTo(Stacks.NAMES.size());
    }
}
