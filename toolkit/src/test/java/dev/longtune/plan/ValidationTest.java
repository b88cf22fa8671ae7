package dev.longtune.plan;

import dev.longtune.config.GpuCatalog;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** The hf-deepspeed profile against the published study's measured peaks (docs/memory-model.md §6). */
class ValidationTest {
    static final double MiB = 1 << 20;

    @Test
    void theStudysFigureIsAllocatedBytes() {
        // max_memory_reserved and nvidia-smi are whole multiples of 2 MiB segments (or whole MiB); the study's
        // peaks are not, and they are equal on A6000 and A100 and for 1 and 8 GPUs, whose CUDA contexts differ:
        // so the study reports max_memory_allocated, and the planner's allocated figure is what compares to it
        for (StudyReference.Row r : StudyReference.ROWS) {
            assertThat(r.peakVramMiB() % 1).as(r.setup()).isNotCloseTo(0, within(0.001));
        }
        assertThat(GpuRuntime.cudaContextBytes(GpuCatalog.get("A6000")))
                .isNotEqualTo(GpuRuntime.cudaContextBytes(GpuCatalog.get("A100-40GB")));
    }

    @Test
    void everyRowIsTheStudyLessTheSameUnmodelledConstant() {
        // After the derived batch term (ids and RoPE cos/sin), every row sits 645.80 MiB under the study: the same
        // bytes on fp16 V100 at 32K and 49K and bf16 A6000/A100 at 128K, so the per-token model is exact to the
        // study's two decimals and what is missing does not depend on context, GPU, world size or attention.
        // A term that changed with context or P would move the rows apart by more than the 0.01 MiB rounding.
        for (Validation.Row r : Validation.run()) {
            assertThat(r.study().peakVramMiB() - r.predictedVramMiB()).as(r.study().setup())
                    .isCloseTo(645.80, within(0.011));
            assertThat(Math.abs(r.gpuError())).isLessThanOrEqualTo(Validation.GPU_TOLERANCE);
            assertThat(Math.abs(r.hostError())).isLessThanOrEqualTo(Validation.HOST_TOLERANCE);
            assertThat(r.plan().gpuPeakPhase()).isEqualTo(Phase.BACKWARD);
            assertThat(r.plan().fits()).isTrue();
        }
    }

    @Test
    void hostPredictionsByRow() {
        // every host term is derived (§3.1) but the 3 GiB per process; the totals to the hundredth of a GiB
        double[] expected = {258.25, 322.25, 310.25, 205.25, 450.25};
        var rows = Validation.run();
        for (int i = 0; i < rows.size(); i++) {
            assertThat(rows.get(i).predictedHostGiB()).as(rows.get(i).study().setup()).isCloseTo(expected[i], within(0.005));
        }
    }

    @Test
    void reservedAndNvidiaSmiFiguresAddTheirDerivedTerms() {
        Validation.Row v100 = Validation.run().get(0);
        MemoryPlan p = v100.plan();
        // allocator: every term rounded up to 2 MiB segments + one 2 MiB small segment + one 20 MiB large buffer
        long rounding = p.gpuAtPeak().terms().stream().mapToLong(t -> Units.roundUp(t.bytes(), 2L << 20) - t.bytes()).sum();
        assertThat(p.gpuReservedBytes() - p.gpuPeakBytes()).isEqualTo(rounding + (22L << 20));
        // context: 80 SMs × 2,048 threads × 1 KiB of stack + 9 MiB FIFO and heap + 245 MiB driver and modules (measured on the H200)
        assertThat(p.gpuNvidiaSmiBytes() - p.gpuReservedBytes()).isEqualTo(160L * (1 << 20) + (9L << 20) + (245L << 20));
        assertThat(p.gpuReservedBytes() % (2L << 20)).isZero();
    }

    @Test
    void slopeMatchesTheStudysTwoV100Rows() {
        // the study's V100 peaks grow by 3,082.50 MiB from 32,768 to 49,152 tokens; the model's per-token terms
        // must give the same to the study's rounding (2 × 0.005 MiB)
        var rows = Validation.run();
        double ours = rows.get(1).predictedVramMiB() - rows.get(0).predictedVramMiB();
        double study = rows.get(1).study().peakVramMiB() - rows.get(0).study().peakVramMiB();
        assertThat(ours).isCloseTo(study, within(0.01));
    }
}
