package dev.longtune.report;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.train.Optimizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.Table;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The measured sweep on the CPU device with a small GQA model: real training steps whose tracked peaks grow
 * with the context and agree with the planner's curve; the same code runs on the GPU in {@code ./longtune study}.
 */
class MeasuredSweepTest {
    static ModelConfig small() throws Exception {
        String json = """
                {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2003, "tie_word_embeddings": false,
                 "rope_theta": 500000.0}""";
        return ModelConfig.parse("sweep", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "test");
    }

    @Test
    void measuredPeaksFollowThePlannersCurve(@TempDir Path dir) throws Exception {
        MeasuredSweep sweep = new MeasuredSweep(small(), Precision.BF16, Checkpointing.DEVICE, Optimizer.Placement.DEVICE,
                NodeCatalog.cpu(), CpuDevice::new);
        List<String> progress = new java.util.ArrayList<>();
        List<MeasuredSweep.Row> rows = sweep.run(new long[] {256, 768, 2304}, progress::add);

        assertThat(rows).hasSize(3).allMatch(MeasuredSweep.Row::ran);
        assertThat(progress).hasSize(3).allMatch(s -> s.startsWith("measured sweep"));
        for (MeasuredSweep.Row r : rows) {
            assertThat(r.error()).as("context %d: planned %d, measured %d", r.context(), r.plannedPeak(), r.measuredPeak())
                    .isCloseTo(0, within(0.10));
            // a parameter's bytes do not depend on the context: weights measured as planned, exactly
            assertThat(r.measured().get(MemoryCategory.WEIGHTS)).isEqualTo(r.planned().get(MemoryCategory.WEIGHTS));
        }
        // activations grow with the context (3× tokens, at least 2× bytes); weights stay put
        assertThat(rows.get(2).measured().get(MemoryCategory.ACTIVATIONS))
                .isGreaterThan(2 * rows.get(0).measured().get(MemoryCategory.ACTIVATIONS));
        assertThat(rows.get(2).measured().get(MemoryCategory.WEIGHTS)).isEqualTo(rows.get(0).measured().get(MemoryCategory.WEIGHTS));

        Table t = MeasuredSweep.table(rows);
        assertThat(t.rowCount()).isEqualTo(3);
        assertThat(t.longColumn("context").asList()).containsExactly(256L, 768L, 2304L);
        assertThat(t.longColumn("measured_peak_bytes").get(1)).isEqualTo(rows.get(1).measuredPeak());
        assertThat(t.stringColumn("status").asList()).containsOnly("ran");

        StudyReport report = new StudyReport(dir, s -> { }).withMeasuredSweep(sweep, new long[] {256, 512});
        List<String> files = report.write("test");
        assertThat(files).contains("measured-by-context.csv", "measured-by-context.png");
        assertThat(Files.readString(dir.resolve("index.html"))).contains("measured-by-context.png").contains(sweep.describe());
        assertThat(Files.readAllLines(dir.resolve("measured-by-context.csv"))).hasSize(3);
    }

    @Test
    void offloadedParametersFollowThePlannersCurveOnBothSides() throws Exception {
        MeasuredSweep sweep = new MeasuredSweep(small(), Precision.BF16, Checkpointing.OFFLOAD, Optimizer.Placement.HOST,
                NodeCatalog.cpu(), CpuDevice::new).withParameters(dev.longtune.model.ParameterPlacement.HOST);
        assertThat(sweep.stack().offloadParameters()).isTrue();
        assertThat(sweep.describe()).contains("parameters on the host");
        List<MeasuredSweep.Row> rows = sweep.run(new long[] {256, 1024}, s -> { });
        for (MeasuredSweep.Row r : rows) {
            // the device's slots and the host's 16-bit store are what the planner's longtune profile says, exactly
            for (MemoryCategory c : List.of(MemoryCategory.WEIGHTS, MemoryCategory.GRADS, MemoryCategory.CHECKPOINTS)) {
                assertThat(r.measured().get(c)).as("device %s at %d", c, r.context()).isEqualTo(r.planned().get(c));
                assertThat(r.hostMeasured().get(c)).as("host %s at %d", c, r.context()).isEqualTo(r.hostPlanned().get(c));
            }
            assertThat(r.measured().get(MemoryCategory.WEIGHTS)).isLessThan(r.hostMeasured().get(MemoryCategory.WEIGHTS));
            // the host optimizer's state is host memory on the CPU device too, where the plan puts it
            assertThat(r.measured().get(MemoryCategory.OPTIMIZER)).isZero();
            assertThat(r.hostMeasured().get(MemoryCategory.OPTIMIZER)).isEqualTo(r.hostPlanned().get(MemoryCategory.OPTIMIZER));
        }
        // the recomputed layer's activations grow with the context and are planned exactly at the backward peak
        assertThat(rows.get(1).measured().get(MemoryCategory.ACTIVATIONS)).isEqualTo(rows.get(1).planned().get(MemoryCategory.ACTIVATIONS));
    }

    @Test
    void aGpuNameFindsItsCatalogueProfile() {
        assertThat(MeasuredSweep.gpuProfile("NVIDIA H200", 150_000_000_000L).bf16Tflops()).isEqualTo(989);
        assertThat(MeasuredSweep.gpuProfile("Tesla V100-SXM2-16GB", 16L << 30).computeCapability()).isEqualTo(70);
        assertThat(MeasuredSweep.gpuProfile("NVIDIA RTX A6000", 48L << 30).computeCapability()).isEqualTo(86);
        assertThat(MeasuredSweep.gpuProfile("NVIDIA RTX A6000", 48L << 30).memoryBytes()).isEqualTo(48L << 30);
    }
}
