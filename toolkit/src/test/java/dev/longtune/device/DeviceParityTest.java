package dev.longtune.device;

import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.CudaOptions;
import dev.longtune.cuda.FlashAttentionLaunch;
import dev.longtune.cuda.GpuTests;
import dev.longtune.ops.reference.AttentionReference;
import dev.longtune.ops.reference.CrossEntropyReference;
import dev.longtune.ops.reference.EmbeddingReference;
import dev.longtune.ops.reference.RmsNormReference;
import dev.longtune.ops.reference.RopeReference;
import dev.longtune.ops.reference.SwiGluReference;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every {@link Device} op against the fp64 references, on odd shapes, in FP32, BF16 and FP16 (the V100's
 * precision), for each device: the CPU always, CUDA where a GPU is present (skipped, with the reason, where none
 * is). {@code -Dlongtune.test.devices=cuda} limits it to the GPU (the GPU machine has no ND4J natives) and makes a
 * missing GPU a failure; README.md, "Running on a GPU", gives the one command that runs it there. The GPU also
 * runs FlashAttention on its WMMA (Volta, sm_86) path, forced, against the same reference.
 */
class DeviceParityTest {
    private static final Map<String, Device> open = new HashMap<>();

    static List<Object[]> cases() {
        List<Object[]> out = new ArrayList<>();
        for (String d : GpuTests.devices()) {
            for (DType e : new DType[] {DType.FP32, DType.BF16, DType.FP16}) {
                out.add(new Object[] {d, e});
            }
        }
        return out;
    }

    /** The GPU cases alone (the forced WMMA path), in the tensor-core dtypes. */
    static List<Object[]> gpuTensorCoreCases() { return gpuCases("cuda-wmma"); }

    /**
     * The GPU with the fused loss cut into chunks of 13 tokens (bf16, fp16) or 9 (fp32) at the parity shape
     * (v = 1003): a budget of 80,000 bytes instead of 1 GiB, so that the 37 tokens take several chunks, the last
     * one partial, and each chunk's gradient GEMMs add into dhidden's rows and dweight.
     */
    static List<Object[]> smallLossChunkCases() { return gpuCasesInEveryDtype("cuda-small-loss-chunks"); }

    /** A GPU device variant in FP32, BF16 and FP16 (none without a GPU). */
    private static List<Object[]> gpuCasesInEveryDtype(String device) {
        List<Object[]> out = new ArrayList<>();
        if (GpuTests.devices().contains("cuda")) {
            for (DType e : new DType[] {DType.FP32, DType.BF16, DType.FP16}) {
                out.add(new Object[] {device, e});
            }
        }
        return out;
    }

    /** The GPU as an A6000 would choose its kernels (99 KiB of shared memory per block), in the tensor-core dtypes. */
    static List<Object[]> a6000Cases() { return gpuCases("cuda-a6000"); }

    private static List<Object[]> gpuCases(String device) {
        List<Object[]> out = new ArrayList<>();
        if (GpuTests.devices().contains("cuda")) {
            for (DType e : new DType[] {DType.BF16, DType.FP16}) {
                out.add(new Object[] {device, e});
            }
        }
        return out;
    }

    /**
     * "cpu", "cuda", "cuda-wmma" (the GPU with FlashAttention forced onto its WMMA path), "cuda-a6000" (kernels
     * chosen for 99 KiB of shared memory per block), or "cuda-small-loss-chunks" (the fused loss in many
     * small chunks).
     */
    static synchronized Device device(String name) {
        if (name.startsWith("cuda")) {
            GpuTests.assumeGpu();
        }
        return open.computeIfAbsent(name, n -> switch (n) {
            case "cuda" -> new CudaDevice();
            case "cuda-wmma" -> new CudaDevice(CudaOptions.defaults().withWmmaAttention());
            case "cuda-a6000" -> new CudaDevice(CudaOptions.defaults().withSharedMemoryLimit(CudaOptions.A6000_SHARED_PER_BLOCK));
            case "cuda-small-loss-chunks" -> new CudaDevice(CudaOptions.defaults().withLossChunkBytes(80_000));
            default -> new CpuDevice();
        });
    }

    @AfterAll
    static synchronized void closeDevices() {
        open.values().forEach(Device::close);
        open.clear();
    }

    /**
     * Relative tolerance on max |error| / max |reference| for outputs computed in fp32 and rounded once: bf16 keeps
     * 8 significant bits (ulp/2 = 2^-9), fp16 11 (2^-12), with room for one or two roundings of intermediates.
     */
    static double tol(DType e) {
        return switch (e) {
            case FP32 -> 2e-5;
            case FP16 -> 4e-3;
            default -> 1.6e-2;
        };
    }

    static float[] randn(Random r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (scale * r.nextGaussian());
        }
        return x;
    }

    /** A device tensor holding {@code values} rounded to e, and the rounded values back as doubles. */
    record Input(Tensor t, double[] exact) {}

    static void close(Input... inputs) {
        for (Input i : inputs) {
            i.t.close();
        }
    }

    static Input input(Device d, DType e, float[] values, String name, int... shape) {
        Tensor t = d.allocate(name, e, MemoryCategory.ACTIVATIONS, shape);
        d.write(t, values);
        return new Input(t, toDouble(d.read(t)));
    }

    static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    static void assertClose(String what, float[] actual, double[] expected, double tol) {
        assertThat(actual).hasSize(expected.length);
        double maxErr = 0, maxRef = 1e-30;
        for (int i = 0; i < expected.length; i++) {
            assertThat(Float.isFinite(actual[i])).as(what + "[" + i + "] is finite").isTrue();
            maxErr = Math.max(maxErr, Math.abs(actual[i] - expected[i]));
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        assertThat(maxErr / maxRef).as(what + ": max error " + maxErr + " against max |ref| " + maxRef).isLessThan(tol);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void readWriteRoundsLikeTheDType(String dev, DType e) {
        Device d = device(dev);
        float[] x = randn(new Random(1), 3 * 37 * 131, 3.0);
        try (Tensor t = d.allocate("x", e, MemoryCategory.ACTIVATIONS, 3, 37, 131)) {
            d.write(t, x);
            float[] expected = x.clone();
            e.roundInPlace(expected, 0, expected.length);
            assertThat(d.read(t)).containsExactly(expected);
            d.zero(t);
            assertThat(d.read(t)).containsOnly(0f);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void matmulInEveryTransposition(String dev, DType e) {
        Device d = device(dev);
        Random r = new Random(2);
        int m = 37, n = 131, k = 29;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                Input a = input(d, e, randn(r, m * k, 1), "a", ta ? k : m, ta ? m : k);
                Input b = input(d, e, randn(r, k * n, 1), "b", tb ? n : k, tb ? k : n);
                Input c0 = input(d, e, randn(r, m * n, 1), "c", m, n);
                double[] ref = new double[m * n];
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double s = 0.5 * c0.exact[i * n + j];
                        for (int p = 0; p < k; p++) {
                            s += a.exact[ta ? p * m + i : i * k + p] * b.exact[tb ? j * k + p : p * n + j];
                        }
                        ref[i * n + j] = s;
                    }
                }
                d.matmul(c0.t, a.t, b.t, m, n, k, ta, tb, 0.5f);
                assertClose("matmul ta=" + ta + " tb=" + tb, d.read(c0.t), ref, tol(e));
                close(a, b, c0);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void rmsNormForwardAndBackward(String dev, DType e) {
        // 131: the element-by-element kernels; 136 and 4,104 (a multiple of 8, 513 packs): the register-resident
        // packed kernels, at 4,104 with more than 256 threads a block and some threads holding one pack, not two
        for (int c : new int[] {131, 136, 4104}) {
            rmsNormForwardAndBackward(device(dev), e, 3 * 37, c);
        }
    }

    private void rmsNormForwardAndBackward(Device d, DType e, int n, int c) {
        Random r = new Random(3 + c);
        Input x = input(d, e, randn(r, n * c, 2), "x", n, c);
        Input w = input(d, e, randn(r, c, 1), "w", c);
        Input dout = input(d, e, randn(r, n * c, 1), "dout", n, c);
        Input dx = input(d, e, randn(r, n * c, 1), "dx", n, c); // backward adds into what is there
        Input dw = input(d, e, randn(r, c, 1), "dw", c);
        try (Tensor out = d.allocate("out", e, MemoryCategory.ACTIVATIONS, n, c);
             Tensor rstd = d.allocate("rstd", DType.FP32, MemoryCategory.ACTIVATIONS, n)) {
            d.rmsNormForward(out, rstd, x.t, w.t, n, c, 1e-5f);
            double[] ref = new double[n * c];
            RmsNormReference.forward(ref, x.exact, w.exact, n, c, 1e-5);
            assertClose("rmsnorm out c=" + c, d.read(out), ref, tol(e));
            double[] refDx = dx.exact.clone(), refDw = dw.exact.clone();
            RmsNormReference.backward(refDx, refDw, dout.exact, x.exact, w.exact, n, c, 1e-5);
            d.rmsNormBackward(dx.t, dw.t, dout.t, x.t, w.t, rstd, n, c);
            assertClose("rmsnorm dx c=" + c, d.read(dx.t), refDx, tol(e));
            assertClose("rmsnorm dw c=" + c, d.read(dw.t), refDw, 4 * tol(e));
        }
        close(x, w, dout, dx, dw);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void ropeRotatesAndRotatesBack(String dev, DType e) {
        Device d = device(dev);
        Random r = new Random(4);
        int t = 37, hq = 4, hkv = 2, dim = 64;
        int[] positions = new int[t];
        for (int i = 0; i < t; i++) {
            positions[i] = i < 20 ? 131_000 + i : i - 20; // a long document's end, then a new one
        }
        double[] inv = RopeReference.inverseFrequencies(dim, 500000, 8, 1, 4, 8192);
        Input q = input(d, e, randn(r, t * hq * dim, 1), "q", t, hq, dim);
        Input k = input(d, e, randn(r, t * hkv * dim, 1), "k", t, hkv, dim);
        double[] refQ = new double[q.exact.length], refK = new double[k.exact.length];
        RopeReference.forward(refQ, q.exact, positions, inv, t, hq, dim);
        RopeReference.forward(refK, k.exact, positions, inv, t, hkv, dim);
        d.ropeForward(q.t, k.t, positions, inv, t, hq, hkv, dim);
        assertClose("rope q", d.read(q.t), refQ, tol(e));
        assertClose("rope k", d.read(k.t), refK, tol(e));
        double[] dq = new double[refQ.length];
        RopeReference.backward(dq, toDouble(d.read(q.t)), positions, inv, t, hq, dim);
        d.ropeBackward(q.t, k.t, positions, inv, t, hq, hkv, dim);
        assertClose("rope backward", d.read(q.t), dq, tol(e));
        close(q, k);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void swigluForwardAndBackward(String dev, DType e) {
        Device d = device(dev);
        Random r = new Random(5);
        int n = 37, f = 131;
        Input g = input(d, e, randn(r, n * f, 2), "gate", n, f);
        Input u = input(d, e, randn(r, n * f, 1), "up", n, f);
        Input dout = input(d, e, randn(r, n * f, 1), "dout", n, f);
        try (Tensor out = d.allocate("out", e, MemoryCategory.ACTIVATIONS, n, f);
             Tensor dg = d.allocate("dgate", e, MemoryCategory.ACTIVATIONS, n, f);
             Tensor du = d.allocate("dup", e, MemoryCategory.ACTIVATIONS, n, f)) {
            d.swigluForward(out, g.t, u.t, n, f);
            double[] ref = new double[n * f], refDg = new double[n * f], refDu = new double[n * f];
            SwiGluReference.forward(ref, g.exact, u.exact, n, f);
            SwiGluReference.backward(refDg, refDu, dout.exact, g.exact, u.exact, n, f);
            assertClose("swiglu out", d.read(out), ref, tol(e));
            // written over what is there (non-zero here), then added into it
            d.write(dg, randn(r, n * f, 1));
            d.write(du, randn(r, n * f, 1));
            d.swigluBackward(dg, du, dout.t, g.t, u.t, n, f, false);
            assertClose("swiglu dgate", d.read(dg), refDg, tol(e));
            assertClose("swiglu dup", d.read(du), refDu, tol(e));
            double[] dg0 = toDouble(d.read(dg)), du0 = toDouble(d.read(du));
            d.swigluBackward(dg, du, dout.t, g.t, u.t, n, f, true);
            for (int i = 0; i < n * f; i++) {
                dg0[i] += refDg[i];
                du0[i] += refDu[i];
            }
            assertClose("swiglu dgate +=", d.read(dg), dg0, 2 * tol(e));
            assertClose("swiglu dup +=", d.read(du), du0, 2 * tol(e));
        }
        close(g, u, dout);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void embeddingGathersAndScattersRepeatedIds(String dev, DType e) {
        Device d = device(dev);
        Random r = new Random(6);
        int v = 53, c = 131, t = 37;
        int[] ids = new int[t];
        for (int i = 0; i < t; i++) {
            ids[i] = i % 5 == 0 ? 7 : r.nextInt(v); // id 7 repeats
        }
        Input table = input(d, e, randn(r, v * c, 1), "table", v, c);
        Input dout = input(d, e, randn(r, t * c, 1), "dout", t, c);
        Input dtable = input(d, e, randn(r, v * c, 1), "dtable", v, c);
        try (Tensor out = d.allocate("out", e, MemoryCategory.ACTIVATIONS, t, c)) {
            d.embeddingForward(out, ids, table.t, t, c);
            double[] ref = new double[t * c];
            EmbeddingReference.forward(ref, ids, table.exact, t, c);
            assertClose("embedding out", d.read(out), ref, 1e-7);
            double[] refD = dtable.exact.clone();
            EmbeddingReference.backward(refD, dout.exact, ids, t, c);
            d.embeddingBackward(dtable.t, dout.t, ids, t, c);
            assertClose("embedding dtable", d.read(dtable.t), refD, tol(e));
        }
        close(table, dout, dtable);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource({"cases", "smallLossChunkCases"})
    void linearCrossEntropyWithIgnoredTokens(String dev, DType e) {
        checkLinearCrossEntropy(device(dev), e, 1003, true);
    }

    /**
     * The softmax rows kernel (kernels/cuda/cross_entropy.cu, two passes over a row) against the same fp64 reference:
     * vocabularies of 1,004 and 4,100 take its 16-byte path (the larger with four quads a thread, so a thread's running
     * max grows and its sum is rescaled), 1,003 and 4,099 its scalar one; in one chunk and in many (2 to 12 rows a
     * chunk), with masked tokens (the valid tokens' rows gathered into the logits buffer's tail, dhidden's scattered
     * back) and without.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("softmaxCases")
    void linearCrossEntropyOverVocabulariesOfEveryAlignment(String dev, DType e) {
        for (int v : new int[] {1004, 4100, 1003, 4099}) {
            checkLinearCrossEntropy(device(dev), e, v, true);
            checkLinearCrossEntropy(device(dev), e, v, false);
        }
    }

    static List<Object[]> softmaxCases() {
        List<Object[]> out = new ArrayList<>(gpuCasesInEveryDtype("cuda"));
        out.addAll(smallLossChunkCases());
        return out;
    }

    /**
     * Masks as training data has them (the GPU then runs the valid tokens' rows only), FP32 gradients of 16-bit hidden
     * states, and an odd hidden size (so that the gathered FP32 gradient rows must be placed on an aligned boundary in
     * the logits buffer, not right after the gathered 16-bit hidden rows).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("softmaxCases")
    void linearCrossEntropyWithPromptMasksAndFp32Gradients(String dev, DType e) {
        List<java.util.function.IntPredicate> masks = List.of(
                i -> i < 30,       // a long prompt, then the answer
                i -> i != 36,      // one trained token
                i -> i % 6 == 0);  // scattered
        for (java.util.function.IntPredicate masked : masks) {
            checkLinearCrossEntropy(device(dev), e, DType.FP32, 1003, 63, masked);
        }
    }

    /** masked: every sixth token's label is −100 (the GPU then runs the valid tokens' rows only); else none is. */
    private static void checkLinearCrossEntropy(Device d, DType e, int v, boolean masked) {
        checkLinearCrossEntropy(d, e, e, v, 64, i -> masked && i % 6 == 0);
    }

    /** hidden and weight in e, dhidden in g, h wide; the tokens where maskedAt holds get label −100. */
    private static void checkLinearCrossEntropy(Device d, DType e, DType g, int v, int h,
                                                java.util.function.IntPredicate maskedAt) {
        Random r = new Random(7);
        int n = 37;
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = maskedAt.test(i) ? -100 : r.nextInt(v);
        }
        Input hidden = input(d, e, randn(r, n * h, 1), "hidden", n, h);
        Input w = input(d, e, randn(r, v * h, 0.1), "w", v, h);
        Input dh = input(d, g, randn(r, n * h, 0.01), "dh", n, h);
        Input dw = input(d, e, randn(r, v * h, 0.01), "dw", v, h);
        double refLoss = CrossEntropyReference.forward(hidden.exact, w.exact, labels, n, h, v);
        double[] refDh = new double[n * h], refDw = new double[v * h];
        CrossEntropyReference.backward(refDh, refDw, hidden.exact, w.exact, labels, n, h, v);
        for (int i = 0; i < refDh.length; i++) {
            refDh[i] = dh.exact[i] + 3 * refDh[i];
        }
        for (int i = 0; i < refDw.length; i++) {
            refDw[i] = dw.exact[i] + 3 * refDw[i];
        }
        double loss = d.linearCrossEntropy(dh.t, dw.t, hidden.t, w.t, labels, n, h, v, 3f);
        assertThat(Math.abs(loss - refLoss) / refLoss).as("loss " + loss + " vs " + refLoss).isLessThan(e == DType.FP32 ? 1e-5 : e == DType.FP16 ? 2e-3 : 5e-3);
        float[] gotDh = d.read(dh.t);
        assertClose("flce dhidden", gotDh, refDh, 2 * tol(e));
        assertClose("flce dweight", d.read(dw.t), refDw, 2 * tol(e));
        for (int i = 0; i < n; i++) {
            if (labels[i] == -100) { // a masked token's row of dhidden is left as it was
                for (int j = 0; j < h; j++) {
                    assertThat(gotDh[i * h + j]).as("dhidden of masked token " + i).isEqualTo((float) dh.exact[i * h + j]);
                }
            }
        }
        close(hidden, w, dh, dw);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void attentionPackedCausalGqa(String dev, DType e) {
        Device d = device(dev);
        if (d instanceof CudaDevice c && c.kernels().arch() == 90 && e != DType.FP32) {
            // an H100/H200 runs the Hopper (wgmma) kernels for head dim 128, not a silent fallback to sm_80's
            assertThat(c.kernels().hopperAttention()).isTrue();
        }
        checkAttention(d, e);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("gpuTensorCoreCases")
    void attentionOnTheWmmaPathAsAVoltaOrSm86RunsIt(String dev, DType e) {
        Device d = device(dev);
        // the Java side of the path: the module built with FA_FORCE_VOLTA_PATH, and its tiles and shared memory
        assertThat(((CudaDevice) d).kernels().flashAttentionWmmaPath()).isTrue();
        assertThat(((CudaDevice) d).kernels().hopperAttention()).isFalse();
        checkAttention(d, e);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("a6000Cases")
    void attentionInTheSharedMemoryOfAnA6000(String dev, DType e) {
        Device d = device(dev);
        // the mma.sync kernels built for 99 KiB per block (swizzled tiles, one Q and one dO tile in the backward),
        // not the WMMA fallback an A6000 got before, nor the Hopper kernels
        CudaDevice c = (CudaDevice) d;
        assertThat(c.kernels().attentionPath()).isEqualTo(FlashAttentionLaunch.Path.MMA_SMALL);
        assertThat(c.kernels().hopperAttention()).isFalse();
        checkAttention(d, e);
    }

    /** Forward and backward of causal GQA attention over three packed documents, head dims 64 and 128. */
    static void checkAttention(Device d, DType e) {
        Random r = new Random(8);
        for (int dim : new int[] {64, 128}) {
            int t = 300, hq = 4, hkv = 2;
            int[] cu = {0, 97, 130, 300}; // three documents of uneven lengths
            Input q = input(d, e, randn(r, t * hq * dim, 1), "q", t, hq, dim);
            Input k = input(d, e, randn(r, t * hkv * dim, 1), "k", t, hkv, dim);
            Input v = input(d, e, randn(r, t * hkv * dim, 1), "v", t, hkv, dim);
            Input dout = input(d, e, randn(r, t * hq * dim, 1), "dout", t, hq, dim);
            double[] refOut = new double[t * hq * dim], refLse = new double[hq * t];
            AttentionReference.forward(refOut, refLse, q.exact, k.exact, v.exact, cu, t, hq, hkv, dim);
            try (Tensor out = d.allocate("out", e, MemoryCategory.ACTIVATIONS, t, hq, dim);
                 Tensor lse = d.allocate("lse", DType.FP32, MemoryCategory.ACTIVATIONS, hq, t);
                 Tensor dq = d.allocate("dq", e, MemoryCategory.ACTIVATIONS, t, hq, dim);
                 Tensor dk = d.allocate("dk", e, MemoryCategory.ACTIVATIONS, t, hkv, dim);
                 Tensor dv = d.allocate("dv", e, MemoryCategory.ACTIVATIONS, t, hkv, dim)) {
                d.attentionForward(out, lse, q.t, k.t, v.t, cu, t, hq, hkv, dim);
                assertClose("attention out d=" + dim, d.read(out), refOut, tol(e));
                assertClose("attention lse d=" + dim, d.read(lse), refLse, 1e-5);
                double[] rdq = new double[refOut.length], rdk = new double[k.exact.length], rdv = new double[k.exact.length];
                AttentionReference.backward(rdq, rdk, rdv, dout.exact, q.exact, k.exact, v.exact, toDouble(d.read(out)),
                        cu, t, hq, hkv, dim);
                d.attentionBackward(dq, dk, dv, dout.t, q.t, k.t, v.t, out, lse, cu, t, hq, hkv, dim);
                assertClose("attention dq d=" + dim, d.read(dq), rdq, 2 * tol(e));
                assertClose("attention dk d=" + dim, d.read(dk), rdk, 2 * tol(e));
                assertClose("attention dv d=" + dim, d.read(dv), rdv, 2 * tol(e));
            }
            close(q, k, v, dout);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void offloadRoundTripOnTheCopyStreams(String dev, DType e) {
        Device d = device(dev);
        Input x = input(d, e, randn(new Random(9), 37 * 131, 1), "x", 37, 131);
        try (Tensor host = d.allocateHost("x offloaded", e, MemoryCategory.CHECKPOINTS, 37, 131);
             Tensor back = d.allocate("x back", e, MemoryCategory.CHECKPOINTS, 37, 131)) {
            // a copy stream is ordered only by the events it waits for: after the zeroing of the new tensors on compute
            d.waitFor(Device.Stream.DEVICE_TO_HOST, d.record(Device.Stream.COMPUTE));
            d.copyAsync(host, x.t, Device.Stream.DEVICE_TO_HOST);
            d.record(Device.Stream.DEVICE_TO_HOST).synchronize();
            d.waitFor(Device.Stream.HOST_TO_DEVICE, d.record(Device.Stream.COMPUTE));
            d.copyAsync(back, host, Device.Stream.HOST_TO_DEVICE);
            d.waitFor(Device.Stream.COMPUTE, d.record(Device.Stream.HOST_TO_DEVICE));
            assertThat(d.read(back)).containsExactly(d.read(x.t));
            assertThat(d.hostMemory().current(MemoryCategory.CHECKPOINTS)).isEqualTo(37L * 131 * e.bytes);
        }
        close(x);
    }

    /** Where a tensor can live: the device's memory, host memory for offloads, memory Java reads directly. */
    enum Place { DEVICE, HOST, CPU_VISIBLE }

    static Tensor allocate(Device d, Place p, String name, DType e, int n) {
        return switch (p) {
            case DEVICE -> d.allocate(name, e, MemoryCategory.ACTIVATIONS, n);
            case HOST -> d.allocateHost(name, e, MemoryCategory.CHECKPOINTS, n);
            case CPU_VISIBLE -> d.allocateCpuVisible(name, e, MemoryCategory.OPTIMIZER, n);
        };
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void copyRoundsToTheDestinationBetweenEveryPairOfPlacesAndDtypes(String dev, DType e) {
        Device d = device(dev);
        Random r = new Random(10);
        int n = 3 * 37 * 131;
        float[] x = randn(r, n, 3);
        // values that each type rounds its own way: fp16 subnormals and underflow, fp16 overflow, bf16 ties
        float[] special = {1e-6f, -3e-8f, 2e-8f, 6.1e-5f, 70000f, -65520f, 65519f, 1.00390625f, 1.01171875f, 1e30f};
        System.arraycopy(special, 0, x, 17, special.length);
        float[] inSource = x.clone();
        e.roundInPlace(inSource, 0, n);
        for (Place from : Place.values()) {
            for (Place to : Place.values()) {
                for (DType target : new DType[] {DType.FP32, DType.BF16, DType.FP16}) {
                    float[] expected = inSource.clone();
                    target.roundInPlace(expected, 0, n);
                    try (Tensor src = allocate(d, from, "src", e, n); Tensor dst = allocate(d, to, "dst", target, n)) {
                        d.write(src, x);
                        d.copy(dst, src);
                        float[] got = d.read(dst);
                        String what = e + " " + from + " -> " + target + " " + to;
                        for (int i = 0; i < n; i++) {
                            if (Float.floatToIntBits(got[i]) != Float.floatToIntBits(expected[i])) {
                                assertThat(got[i]).as(what + " [" + i + "] of " + x[i]).isEqualTo(expected[i]);
                            }
                        }
                        assertThat(d.read(src)).as(what + ": the source is unchanged").containsExactly(inSource);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void everyAllocationIsReturned(String dev, DType e) {
        Device d = device(dev);
        long before = d.memory().currentTotal();
        for (int i = 0; i < 200; i++) {
            try (Tensor a = d.allocate("a", e, MemoryCategory.WORKSPACE, 1000 + i);
                 Tensor b = d.allocate("b", e, MemoryCategory.ACTIVATIONS, 3, 37, 131)) {
                assertThat(d.memory().current(MemoryCategory.WORKSPACE)).isGreaterThanOrEqualTo((1000L + i) * e.bytes);
                assertThat(d.memory().currentTotal()).isEqualTo(before + (1000L + i + 3 * 37 * 131) * e.bytes);
            }
        }
        assertThat(d.memory().currentTotal()).isEqualTo(before);
    }
}
