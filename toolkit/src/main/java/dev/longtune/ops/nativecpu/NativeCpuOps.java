package dev.longtune.ops.nativecpu;

import java.util.Objects;

/**
 * Fused CPU ops from {@code kernels/cpu} (C++ with OpenMP, through JavaCPP), with the same contracts as
 * {@link dev.longtune.ops.RmsNorm}, {@link dev.longtune.ops.SwiGlu}, {@link dev.longtune.ops.AdamW} and
 * {@link dev.longtune.ops.Rope}: fp32, row-major, RmsNorm/SwiGlu backward adds into the gradient buffers,
 * Rope works in place, nullable gradients where the Java op allows them.
 *
 * <p>Callers check {@link #isAvailable()} and fall back to the Java ops when it is false;
 * {@link #unavailableReason()} says why (no library for this platform, a missing libgomp, ...). Array
 * lengths are checked before any native call, since the kernels themselves do not check bounds.
 */
public final class NativeCpuOps {
    private NativeCpuOps() {}

    private static final String UNAVAILABLE_REASON = probe();

    private static String probe() {
        if (Boolean.getBoolean("longtune.nativecpu.disable")) {
            return "disabled by -Dlongtune.nativecpu.disable=true";
        }
        try {
            NativeCpuKernels.maxThreads();
            return null;
        } catch (Throwable t) {
            Throwable root = t;
            while (root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
            }
            return t.getClass().getSimpleName() + ": " + t.getMessage()
                    + (root != t ? " (cause: " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")" : "");
        }
    }

    /** True when the native library loaded (linux-x86_64 with its libjniNativeCpuKernels.so and libgomp). */
    public static boolean isAvailable() {
        return UNAVAILABLE_REASON == null;
    }

    /** Why {@link #isAvailable()} is false, or null when it is true. */
    public static String unavailableReason() {
        return UNAVAILABLE_REASON;
    }

    /** OpenMP threads the kernels use (set with OMP_NUM_THREADS before the JVM starts). */
    public static int threads() {
        requireAvailable();
        return NativeCpuKernels.maxThreads();
    }

    /** As {@link dev.longtune.ops.RmsNorm#forward}. */
    public static void rmsNormForward(float[] out, float[] rstd, float[] inp, float[] weight, int N, int C, float eps) {
        requireAvailable();
        checkShape(N, C);
        long nc = (long) N * C;
        check(out, nc, "out");
        check(rstd, N, "rstd");
        check(inp, nc, "inp");
        check(weight, C, "weight");
        NativeCpuKernels.rmsNormForward(out, rstd, inp, weight, N, C, eps);
    }

    /** As {@link dev.longtune.ops.RmsNorm#backward}: adds into dinp and dweight, either may be null. */
    public static void rmsNormBackward(float[] dinp, float[] dweight, float[] dout, float[] inp, float[] weight,
                                       float[] rstd, int N, int C) {
        requireAvailable();
        checkShape(N, C);
        long nc = (long) N * C;
        if (dinp != null) {
            check(dinp, nc, "dinp");
        }
        if (dweight != null) {
            check(dweight, C, "dweight");
        }
        check(dout, nc, "dout");
        check(inp, nc, "inp");
        check(weight, C, "weight");
        check(rstd, N, "rstd");
        NativeCpuKernels.rmsNormBackward(dinp, dweight, dout, inp, weight, rstd, N, C);
    }

    /** As {@link dev.longtune.ops.SwiGlu#forward}. */
    public static void swiGluForward(float[] out, float[] gate, float[] up, int N, int F) {
        requireAvailable();
        checkShape(N, F);
        long nf = (long) N * F;
        check(out, nf, "out");
        check(gate, nf, "gate");
        check(up, nf, "up");
        NativeCpuKernels.swiGluForward(out, gate, up, N, F);
    }

    /** As {@link dev.longtune.ops.SwiGlu#backward}: adds into dgate and dup. */
    public static void swiGluBackward(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int N, int F) {
        requireAvailable();
        checkShape(N, F);
        long nf = (long) N * F;
        check(dgate, nf, "dgate");
        check(dup, nf, "dup");
        check(dout, nf, "dout");
        check(gate, nf, "gate");
        check(up, nf, "up");
        NativeCpuKernels.swiGluBackward(dgate, dup, dout, gate, up, N, F);
    }

    /**
     * As {@link dev.longtune.ops.AdamW#step(float[], float[], float[], float[], int, int, double, double, double,
     * double, double, int)}, with the same arithmetic (bit for bit): updates [offset, offset + length).
     */
    public static void adamWStep(float[] params, float[] grads, float[] m, float[] v, int offset, int length,
                                 double lr, double beta1, double beta2, double eps, double weightDecay, int t) {
        requireAvailable();
        if (t < 1) {
            throw new IllegalArgumentException("AdamW counts steps from 1 (bias correction divides by 1 − β^t); got t = " + t);
        }
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("negative range (offset " + offset + ", length " + length + ")");
        }
        long end = (long) offset + length;
        check(params, end, "params");
        check(grads, end, "grads");
        check(m, end, "m");
        check(v, end, "v");
        NativeCpuKernels.adamWStep(params, grads, m, v, offset, length, lr, beta1, beta2, eps, weightDecay, t);
    }

    /** As {@link dev.longtune.ops.AdamW#step(float[], float[], float[], float[], double, double, double, double, double, int)}. */
    public static void adamWStep(float[] params, float[] grads, float[] m, float[] v, double lr, double beta1,
                                 double beta2, double eps, double weightDecay, int t) {
        Objects.requireNonNull(params, "params");
        adamWStep(params, grads, m, v, 0, params.length, lr, beta1, beta2, eps, weightDecay, t);
    }

    /** As {@link dev.longtune.ops.Rope#forward}: rotates q and k in place; k may be null (then Hkv is ignored). */
    public static void ropeForward(float[] q, float[] k, int[] positions, double[] invFreq, int T, int Hq, int Hkv,
                                   int D) {
        checkRope(q, k, positions, invFreq, T, Hq, Hkv, D, "q", "k");
        NativeCpuKernels.ropeForward(q, k, positions, invFreq, T, Hq, Hkv, D);
    }

    /** As {@link dev.longtune.ops.Rope#backward}: rotates dq and dk back in place (overwrites); dk may be null. */
    public static void ropeBackward(float[] dq, float[] dk, int[] positions, double[] invFreq, int T, int Hq, int Hkv,
                                    int D) {
        checkRope(dq, dk, positions, invFreq, T, Hq, Hkv, D, "dq", "dk");
        NativeCpuKernels.ropeBackward(dq, dk, positions, invFreq, T, Hq, Hkv, D);
    }

    private static void checkRope(float[] q, float[] k, int[] positions, double[] invFreq, int T, int Hq, int Hkv,
                                  int D, String qName, String kName) {
        requireAvailable();
        checkShape(T, Hq);
        if (D <= 0 || D % 2 != 0) {
            throw new IllegalArgumentException("rope needs an even positive head dimension, got " + D);
        }
        check(q, (long) T * Hq * D, qName);
        if (k != null) {
            checkShape(T, Hkv);
            check(k, (long) T * Hkv * D, kName);
        }
        Objects.requireNonNull(positions, "positions");
        if (positions.length < T) {
            throw new IllegalArgumentException("positions has " + positions.length + " entries for " + T + " tokens");
        }
        Objects.requireNonNull(invFreq, "invFreq");
        if (invFreq.length != D / 2) {
            throw new IllegalArgumentException("invFreq has " + invFreq.length + " entries, head dimension " + D
                    + " needs D/2 = " + D / 2);
        }
    }

    private static void requireAvailable() {
        if (UNAVAILABLE_REASON != null) {
            throw new IllegalStateException("native CPU kernels unavailable: " + UNAVAILABLE_REASON);
        }
    }

    private static void checkShape(int rows, int cols) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("negative shape (" + rows + ", " + cols + ")");
        }
    }

    private static void check(float[] a, long length, String name) {
        Objects.requireNonNull(a, name);
        if (a.length < length) {
            throw new IllegalArgumentException(name + " has " + a.length + " floats, needs " + length);
        }
    }
}
