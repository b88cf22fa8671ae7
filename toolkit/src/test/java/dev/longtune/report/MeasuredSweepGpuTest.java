package dev.longtune.report;

import dev.longtune.bench.GpuCalibration;
import dev.longtune.cuda.GpuTests;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** The study's measured sweep on the GPU present: every context trains, and the planner's peak is within 5%. */
class MeasuredSweepGpuTest {
    @BeforeEach
    void needsAGpu() { GpuTests.assumeGpu(); }

    @Test
    void theStudysSweepOnThisGpuMatchesThePlanner() {
        MeasuredSweep sweep = MeasuredSweep.onThisGpu();
        List<MeasuredSweep.Row> rows = sweep.run(MeasuredSweep.GPU_CONTEXTS, s -> { });
        rows.forEach(r -> System.out.println(GpuCalibration.format(sweep, r)));
        assertThat(rows).hasSize(MeasuredSweep.GPU_CONTEXTS.length).allMatch(MeasuredSweep.Row::ran);
        for (MeasuredSweep.Row r : rows) {
            assertThat(r.error()).as("%,d tokens: planned %,d, measured %,d", r.context(), r.plannedPeak(), r.measuredPeak())
                    .isCloseTo(0, within(0.05));
            assertThat(r.reservedPeak()).isGreaterThanOrEqualTo(r.measuredPeak());
            assertThat(r.measured().get(MemoryCategory.WEIGHTS)).isEqualTo(r.planned().get(MemoryCategory.WEIGHTS));
        }
        assertThat(rows.get(rows.size() - 1).measured().get(MemoryCategory.ACTIVATIONS))
                .isGreaterThan(rows.get(0).measured().get(MemoryCategory.ACTIVATIONS));
    }
}
