package dev.longtune.plan;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The hf-deepspeed profile against the published study's measured peaks (docs/memory-model.md). */
class ValidationTest {
    @Test
    void everyStudyRowIsWithinTheStatedErrors() {
        var rows = Validation.run();
        assertThat(rows).hasSize(5);
        for (Validation.Row r : rows) {
            assertThat(Math.abs(r.gpuError())).as("VRAM error of %s at %d", r.study().setup(), r.study().context())
                    .isLessThanOrEqualTo(Validation.GPU_TOLERANCE);
            assertThat(Math.abs(r.hostError())).as("host error of %s at %d", r.study().setup(), r.study().context())
                    .isLessThanOrEqualTo(Validation.HOST_TOLERANCE);
            assertThat(r.plan().gpuPeakPhase()).isEqualTo(Phase.BACKWARD);
            assertThat(r.plan().fits()).isTrue();
        }
    }

    @Test
    void predictionTracksTheStudysEmpiricalFormula() {
        // the study fitted (802,160,649 + b·s·92,992) × 2 B to its backward peaks; the slope of our
        // prediction between its two V100 rows and its per-token cost on A6000 must agree within 10 %
        var rows = Validation.run();
        double ourSlope = (double) (rows.get(1).plan().gpuPeakBytes() - rows.get(0).plan().gpuPeakBytes()) / (49_152 - 32_768);
        assertThat(ourSlope / (92_992 * 2)).isBetween(0.9, 1.1);
        assertThat((double) rows.get(2).plan().gpuPeakBytes() / StudyReference.empiricalPeakBytes(1, 128_000))
                .isBetween(0.9, 1.1);
    }

    @Test
    void predictedThroughputIsWithinAFactorOfTwoOfTheStudy() {
        for (Validation.Row r : Validation.run()) {
            assertThat(r.tokensRatio()).as(r.study().setup()).isBetween(0.5, 2.0);
        }
    }
}
