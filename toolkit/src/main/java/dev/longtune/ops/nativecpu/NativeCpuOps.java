package dev.longtune.ops.nativecpu;

import java.util.Objects;

/**
 * Fused CPU ops from {@code kernels/cpu} (C++ with OpenMP, through JavaCPP), with the same contracts as
 * {@link dev.longtune.ops.RmsNorm} and {@link dev.longtune.ops.SwiGlu}: fp32, row-major, backward adds into
 * the gradient buffers, nullable gradients where the Java op allows them.
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
