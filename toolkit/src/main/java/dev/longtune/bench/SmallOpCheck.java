package dev.longtune.bench;

import dev.longtune.cuda.CudaDevice;
import dev.longtune.ops.reference.RmsNormReference;
import dev.longtune.ops.reference.RopeReference;
import dev.longtune.ops.reference.SwiGluReference;
import dev.longtune.tensor.Tensor;

import java.util.Arrays;
import java.util.Random;

/** Sampled fp64 checks of the small ops and the GEMM, run before they are timed. */
final class SmallOpCheck {
    private SmallOpCheck() {}

    static double[] d(float[] x, int from, int to) {
        double[] out = new double[to - from];
        for (int i = from; i < to; i++) {
            out[i - from] = x[i];
        }
        return out;
    }

    static double rmsNormRows(CudaDevice dev, Tensor out, Tensor x, Tensor w, int c, int rows) {
        float[] os = dev.read(out), xs = dev.read(x), ws = dev.read(w);
        double[] ref = new double[rows * c];
        RmsNormReference.forward(ref, d(xs, 0, rows * c), d(ws, 0, c), rows, c, 1e-5);
        return GpuBench.relErr(d(os, 0, rows * c), ref);
    }

    static double swigluPrefix(CudaDevice dev, Tensor out, Tensor g, Tensor u, int n) {
        float[] os = dev.read(out), gs = dev.read(g), us = dev.read(u);
        double[] ref = new double[n];
        SwiGluReference.forward(ref, d(gs, 0, n), d(us, 0, n), 1, n);
        return GpuBench.relErr(d(os, 0, n), ref);
    }

    /** Rows [from, to) of q after RoPE, against fp64 from the values before it. */
    static double ropeRows(float[] before, float[] after, int[] pos, double[] inv, int hq, int d, int from, int to) {
        int n = to - from, stride = hq * d;
        double[] ref = new double[n * stride];
        RopeReference.forward(ref, d(before, from * stride, to * stride), Arrays.copyOfRange(pos, from, to), inv, n, hq, d);
        return GpuBench.relErr(d(after, from * stride, to * stride), ref);
    }

    static double gemmSamples(CudaDevice dev, Tensor c, Tensor a, Tensor b, int m, int n, int k, Random random) {
        float[] cs = dev.read(c), as = dev.read(a), bs = dev.read(b);
        double[] got = new double[64], ref = new double[64];
        for (int s = 0; s < 64; s++) {
            int i = random.nextInt(m), j = random.nextInt(n);
            double dot = 0;
            for (int p = 0; p < k; p++) {
                dot += (double) as[i * k + p] * bs[j * k + p];
            }
            ref[s] = dot;
            got[s] = cs[i * n + j];
        }
        return GpuBench.relErr(got, ref);
    }
}
