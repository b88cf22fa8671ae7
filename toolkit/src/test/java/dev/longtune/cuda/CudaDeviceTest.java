package dev.longtune.cuda;

import dev.longtune.ops.AdamW;
import dev.longtune.ops.GradientClipping;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** What only the GPU device has: its AdamW and norm kernels, the memory cap, release on close, NVRTC errors. */
class CudaDeviceTest {
    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void needsAGpu() {
        assumeTrue(Cuda.available(), () -> "no GPU: " + Cuda.whyUnavailable());
    }

    static float[] randn(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    @Test
    void adamwKernelMatchesTheJavaOptimizer() {
        Random r = new Random(1);
        int n = 3 * 37 * 131;
        float[] p = randn(r, n), g = randn(r, n), m = new float[n], v = new float[n];
        try (CudaDevice d = new CudaDevice();
             Tensor tp = d.allocate("p", DType.FP32, MemoryCategory.WEIGHTS, n);
             Tensor tg = d.allocate("g", DType.FP32, MemoryCategory.GRADS, n);
             Tensor tm = d.allocate("m", DType.FP32, MemoryCategory.OPTIMIZER, n);
             Tensor tv = d.allocate("v", DType.FP32, MemoryCategory.OPTIMIZER, n)) {
            d.write(tp, p);
            d.write(tg, g);
            for (int step = 1; step <= 3; step++) {
                AdamW.step(p, g, m, v, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
                d.adamw(tp, tg, tm, tv, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
            }
            float[] got = d.read(tp);
            for (int i = 0; i < n; i++) {
                assertThat(got[i]).as("param " + i).isCloseTo(p[i], org.assertj.core.data.Offset.offset(2e-6f * Math.max(1, Math.abs(p[i]))));
            }
            assertThat(d.read(tm)[17]).isCloseTo(m[17], org.assertj.core.data.Offset.offset(1e-6f));
        }
    }

    @Test
    void sumOfSquaresIsTheGlobalNormSquaredInEveryDtype() {
        float[] x = randn(new Random(2), 1_000_003);
        x[7] = 3e-6f; // an FP16 subnormal: inspect sums FP16 gradients where they are
        try (CudaDevice d = new CudaDevice()) {
            for (DType e : new DType[] {DType.FP32, DType.BF16, DType.FP16}) {
                try (Tensor t = d.allocate("x", e, MemoryCategory.GRADS, x.length)) {
                    d.write(t, x);
                    float[] rounded = d.read(t);
                    double norm = GradientClipping.globalNorm(List.of(rounded));
                    assertThat(Math.sqrt(d.sumOfSquares(t))).as(e.id).isCloseTo(norm, org.assertj.core.data.Offset.offset(1e-9 * norm));
                    d.scale(t, 0.5f);
                    float[] halved = d.read(t);
                    for (int i : new int[] {5, 7}) {
                        assertThat(halved[i]).as(e.id + " [" + i + "]").isEqualTo(e.round(rounded[i] * 0.5f));
                    }
                    d.write(t, withNaN(x));
                    assertThat(d.sumOfSquares(t)).as(e.id + ": a NaN gives a non-finite sum").isNaN();
                }
            }
        }
    }

    /**
     * The optimizer's one-pass update (adamw_step_scaled) against the ops it replaces, run one after the other on
     * the same GPU: the gradient copied to FP32, unscaled, clipped, the AdamW step, the param cast into the 16-bit
     * weights. Every bit of param, m, v and weights must agree, for each gradient dtype, weights dtype (or none) and
     * clip, over three steps; and the norm's sum of squares read from the 16-bit gradient must equal the FP32 copy's.
     */
    @Test
    void theFusedOptimizerUpdateIsTheCopyScaleStepCastSequenceBitForBit() {
        Random r = new Random(3);
        int n = 3 * 37 * 131;
        float[] p0 = randn(r, n), g0 = randn(r, n);
        for (int i = 0; i < n; i++) {
            g0[i] *= 1024f; // a loss-scaled gradient
        }
        float unscale = 1f / 1024f;
        try (CudaDevice d = new CudaDevice()) {
            for (DType ge : new DType[] {DType.FP32, DType.BF16, DType.FP16}) {
                for (DType we : new DType[] {null, DType.BF16, DType.FP16, DType.FP32}) {
                    for (float clip : new float[] {1f, 0.37f}) {
                        String what = "grad " + ge.id + ", weights " + (we == null ? "none" : we.id) + ", clip " + clip;
                        try (Tensor g = d.allocate("g", ge, MemoryCategory.GRADS, n);
                             Tensor g32 = d.allocate("g32", DType.FP32, MemoryCategory.WORKSPACE, n);
                             Tensor pa = d.allocate("pa", DType.FP32, MemoryCategory.OPTIMIZER, n);
                             Tensor ma = d.allocate("ma", DType.FP32, MemoryCategory.OPTIMIZER, n);
                             Tensor va = d.allocate("va", DType.FP32, MemoryCategory.OPTIMIZER, n);
                             Tensor pb = d.allocate("pb", DType.FP32, MemoryCategory.OPTIMIZER, n);
                             Tensor mb = d.allocate("mb", DType.FP32, MemoryCategory.OPTIMIZER, n);
                             Tensor vb = d.allocate("vb", DType.FP32, MemoryCategory.OPTIMIZER, n);
                             Tensor wa = we == null ? null : d.allocate("wa", we, MemoryCategory.WEIGHTS, n);
                             Tensor wb = we == null ? null : d.allocate("wb", we, MemoryCategory.WEIGHTS, n)) {
                            d.write(g, g0);
                            for (Tensor t : new Tensor[] {pa, pb}) {
                                d.write(t, p0);
                            }
                            for (Tensor t : new Tensor[] {ma, va, mb, vb}) {
                                d.zero(t);
                            }
                            d.copy(g32, g);
                            d.scale(g32, unscale);
                            assertThat(d.sumOfSquares(g, unscale)).as(what + ": sum of squares").isEqualTo(d.sumOfSquares(g32));
                            for (int step = 1; step <= 3; step++) {
                                d.adamwScaled(pa, g, ma, va, unscale, clip, wa, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
                                d.copy(g32, g);
                                d.scale(g32, unscale);
                                if (clip != 1f) {
                                    d.scale(g32, clip);
                                }
                                d.adamw(pb, g32, mb, vb, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
                                if (wb != null) {
                                    d.copy(wb, pb);
                                }
                            }
                            float[] p1 = d.read(pa);
                            assertThat(p1).as(what + ": param").containsExactly(d.read(pb));
                            assertThat(p1).as(what + ": the update moved the param").isNotEqualTo(p0);
                            assertThat(d.read(ma)).as(what + ": m").containsExactly(d.read(mb));
                            assertThat(d.read(va)).as(what + ": v").containsExactly(d.read(vb));
                            if (wa != null) {
                                assertThat(d.read(wa)).as(what + ": weights").containsExactly(d.read(wb));
                            }
                        }
                    }
                }
            }
        }
    }

    static float[] withNaN(float[] x) {
        float[] y = x.clone();
        y[x.length / 2] = Float.NaN;
        return y;
    }

    @Test
    void aCapStandsInForASmallerGpuAndItsErrorSaysWhatIsHeld() {
        try (CudaDevice d = new CudaDevice(CudaOptions.defaults().withMemoryCap(64L << 20));
             Tensor w = d.allocate("weights", DType.BF16, MemoryCategory.WEIGHTS, 16 << 20)) {
            d.setOutOfMemoryAdvice(() -> "try --checkpointing offload");
            assertThatThrownBy(() -> d.allocate("'d gate'", DType.BF16, MemoryCategory.ACTIVATIONS, 20 << 20))
                    .isInstanceOf(GpuOutOfMemoryException.class)
                    .hasMessageContaining("'d gate'").hasMessageContaining("activations")
                    .hasMessageContaining("weights 32.00 MiB").hasMessageContaining("cap of 64.00 MiB")
                    .hasMessageContaining("try --checkpointing offload");
            try (Tensor small = d.allocate("fits", DType.BF16, MemoryCategory.ACTIVATIONS, 1 << 20)) {
                assertThat(d.read(small)).containsOnly(0f); // still usable, and new tensors are zeroed
            }
        }
    }

    @Test
    void cachedPinnedBlocksAreGivenBackOnRequestAndLiveOnesKept() {
        try (CudaDevice d = new CudaDevice()) {
            long before = d.pinnedSummary().get("reserved");
            Tensor kept = d.allocateHost("kept", DType.BF16, MemoryCategory.CHECKPOINTS, 3, 1 << 20);
            Tensor freed = d.allocateHost("freed", DType.BF16, MemoryCategory.CHECKPOINTS, 5, 1 << 20);
            long both = d.pinnedSummary().get("reserved");
            freed.close(); // cached: still pinned
            assertThat(d.pinnedSummary().get("reserved")).isEqualTo(both);
            d.releaseCachedPinned();
            long after = d.pinnedSummary().get("reserved");
            assertThat(after).isLessThanOrEqualTo(both - 10L * (1 << 20)).isGreaterThanOrEqualTo(before + 6L * (1 << 20));
            d.write(kept, new float[3 << 20]); // the live block is still usable
            kept.close();
        }
    }

    @Test
    void closingReleasesEverything() {
        long freeBefore;
        try (CudaDevice probe = new CudaDevice()) {
            freeBefore = probe.memoryInfo()[0];
        }
        CudaDevice d = new CudaDevice();
        for (int i = 0; i < 20; i++) {
            d.allocate("leaked on purpose " + i, DType.FP32, MemoryCategory.ACTIVATIONS, 64 << 20); // 256 MiB each
        }
        assertThat(d.allocator().reserved()).isGreaterThanOrEqualTo(20L * (256L << 20));
        d.close();
        assertThat(d.allocator().reserved()).isZero();
        try (CudaDevice after = new CudaDevice()) {
            assertThat(after.memoryInfo()[0]).isGreaterThan(freeBefore - (256L << 20));
        }
    }

    @Test
    void aKernelThatDoesNotCompileShowsNvrtcsLogAndTheFile() {
        NvrtcCompiler c = new NvrtcCompiler(NvrtcCompiler.defaultCacheDir());
        assertThatThrownBy(() -> c.ptxOf("broken.cu", "extern \"C\" __global__ void broken() { undefined_thing = 1; }", 80))
                .isInstanceOf(NvrtcCompiler.KernelCompileException.class)
                .hasMessageContaining("broken.cu").hasMessageContaining("undefined_thing");
    }
}
