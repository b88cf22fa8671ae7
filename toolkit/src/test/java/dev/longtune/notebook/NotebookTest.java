package dev.longtune.notebook;

import org.junit.jupiter.api.Test;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import static org.assertj.core.api.Assertions.assertThat;

class NotebookTest {
    @Test
    void byteColumnsAreShownInMibAndTheRestKept() {
        Table bytes = Table.create("memory",
                StringColumn.create("category", "weights", "activations"),
                LongColumn.create("measured B", 3L << 20, 1_572_864L + 4000),
                LongColumn.create("context", 4096, 8192));
        Table shown = Notebook.inMiB(bytes);
        assertThat(shown.columnNames()).containsExactly("category", "measured MiB", "context");
        assertThat(shown.doubleColumn("measured MiB").asList()).containsExactly(3.0, 1.5); // 1.504 MiB shows as 1.5
        assertThat(shown.longColumn("context").asList()).containsExactly(4096L, 8192L); // not a byte column
        assertThat(bytes.columnNames()).containsExactly("category", "measured B", "context"); // unchanged
    }
}
