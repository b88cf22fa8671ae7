package dev.longtune.ops.nativecpu;

import dev.longtune.ops.AttentionShapes;
import dev.longtune.ops.FlashAttention;

import java.util.Objects;

/**
 * Fused CPU ops from {@code kernels/cpu} (C++ with OpenMP, through JavaCPP), with the same contracts as
 * {@link dev.longtune.ops.RmsNorm}, {@link dev.longtune.ops.SwiGlu}, {@link dev.longtune.ops.AdamW} and
 * {@link dev.longtune.ops.Rope}, {@link dev.longtune.ops.FlashAttention}, {@link dev.longtune.ops.Embedding} and the
 * row-wise part of {@link dev.longtune.ops.FusedLinearCrossEntropy}: fp32, row-major; the backward of RmsNorm,
 * SwiGlu, FlashAttention and Embedding adds into the gradient buffers, Rope works in place, nullable gradients
 * where the Java op allows them.
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

    /**
     * As {@link dev.longtune.ops.FlashAttention#forward(float[], float[], float[], float[], float[], int[], int,
     * int, int, int, int, int)}: writes out and lse; causal within the documents of cuSeqlens, GQA.
     */
    // q, out are (T, Hq, D); k, v are (T, Hkv, D); lse is (Hq, T)
    public static void flashAttentionForward(float[] out, float[] lse, float[] q, float[] k, float[] v,
                                             int[] cuSeqlens, int t, int hq, int hkv, int d, int blockRows,
                                             int blockCols) {
        requireAvailable();
        checkAttention(q, k, v, cuSeqlens, t, hq, hkv, d, blockRows, blockCols);
        AttentionShapes.require(out.length == q.length, "out has " + out.length + " elements, expected T*Hq*D = " + q.length);
        AttentionShapes.require(lse.length == hq * t, "lse has " + lse.length + " elements, expected Hq*T = " + hq * t);
        NativeCpuKernels.flashAttentionForward(out, lse, q, k, v, cuSeqlens, cuSeqlens.length - 1, t, hq, hkv, d,
                blockRows, blockCols);
    }

    /** {@link #flashAttentionForward(float[], float[], float[], float[], float[], int[], int, int, int, int, int, int)} with the Java op's 64×64 tiles. */
    public static void flashAttentionForward(float[] out, float[] lse, float[] q, float[] k, float[] v,
                                             int[] cuSeqlens, int t, int hq, int hkv, int d) {
        flashAttentionForward(out, lse, q, k, v, cuSeqlens, t, hq, hkv, d, FlashAttention.DEFAULT_BLOCK_ROWS,
                FlashAttention.DEFAULT_BLOCK_COLS);
    }

    /** As {@link dev.longtune.ops.FlashAttention#backward}: adds into dq, dk and dv. */
    // dq, dout, q, out are (T, Hq, D); dk, dv, k, v are (T, Hkv, D); lse is (Hq, T)
    public static void flashAttentionBackward(float[] dq, float[] dk, float[] dv, float[] dout, float[] q, float[] k,
                                              float[] v, float[] out, float[] lse, int[] cuSeqlens, int t, int hq,
                                              int hkv, int d, int blockRows, int blockCols) {
        requireAvailable();
        checkAttention(q, k, v, cuSeqlens, t, hq, hkv, d, blockRows, blockCols);
        AttentionShapes.require(dq.length == q.length && dout.length == q.length && out.length == q.length,
                "dq, dout and out must have T*Hq*D = " + q.length + " elements like q");
        AttentionShapes.require(dk.length == k.length && dv.length == k.length,
                "dk and dv must have T*Hkv*D = " + k.length + " elements like k and v");
        AttentionShapes.require(lse.length == hq * t, "lse has " + lse.length + " elements, expected Hq*T = " + hq * t);
        NativeCpuKernels.flashAttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, cuSeqlens, cuSeqlens.length - 1,
                t, hq, hkv, d, blockRows, blockCols);
    }

    /** {@link #flashAttentionBackward(float[], float[], float[], float[], float[], float[], float[], float[], float[], int[], int, int, int, int, int, int)} with 64×64 tiles. */
    public static void flashAttentionBackward(float[] dq, float[] dk, float[] dv, float[] dout, float[] q, float[] k,
                                              float[] v, float[] out, float[] lse, int[] cuSeqlens, int t, int hq,
                                              int hkv, int d) {
        flashAttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, cuSeqlens, t, hq, hkv, d,
                FlashAttention.DEFAULT_BLOCK_ROWS, FlashAttention.DEFAULT_BLOCK_COLS);
    }

    /** As {@link dev.longtune.ops.Embedding#forward}: out[t] = table[ids[t]], ids checked against the table's rows. */
    // ids is (T), table (V, C), out (T, C)
    public static void embeddingForward(float[] out, int[] ids, float[] table, int T, int C) {
        requireAvailable();
        checkEmbedding(ids, table, T, C, "table");
        check(out, (long) T * C, "out");
        NativeCpuKernels.embeddingForward(out, ids, table, T, C);
    }

    /** As {@link dev.longtune.ops.Embedding#backward}: dtable[ids[t]] += dout[t], in token order (deterministic). */
    // dout is (T, C), ids (T); dtable (V, C) +=
    public static void embeddingBackward(float[] dtable, float[] dout, int[] ids, int T, int C) {
        requireAvailable();
        checkEmbedding(ids, dtable, T, C, "dtable");
        check(dout, (long) T * C, "dout");
        NativeCpuKernels.embeddingBackward(dtable, dout, ids, T, C);
    }

    /**
     * The row-wise part of {@link dev.longtune.ops.FusedLinearCrossEntropy} for one chunk: writes each row's loss
     * {@code logsumexp(z) − z[label]} and overwrites its logits with {@code (softmax(z) − onehot(label))·scale}.
     * Labels must lie in [0, V) (ignored tokens are left out of a chunk before this is called).
     */
    // logits (rows, V), labels (rows), loss (rows)
    public static void crossEntropyRows(float[] logits, double[] loss, int[] labels, int rows, int V, float scale) {
        requireAvailable();
        checkShape(rows, V);
        check(logits, (long) rows * V, "logits");
        Objects.requireNonNull(loss, "loss");
        Objects.requireNonNull(labels, "labels");
        if (loss.length < rows || labels.length < rows) {
            throw new IllegalArgumentException("loss has " + loss.length + " and labels " + labels.length
                    + " entries for " + rows + " rows");
        }
        for (int r = 0; r < rows; r++) {
            if (labels[r] < 0 || labels[r] >= V) {
                throw new IllegalArgumentException("label " + labels[r] + " of row " + r + " is outside the vocabulary [0, "
                        + V + "); leave ignored tokens out of the chunk");
            }
        }
        NativeCpuKernels.crossEntropyRows(logits, loss, labels, rows, V, scale);
    }

    private static void checkAttention(float[] q, float[] k, float[] v, int[] cuSeqlens, int t, int hq, int hkv,
                                       int d, int blockRows, int blockCols) {
        Objects.requireNonNull(cuSeqlens, "cuSeqlens");
        AttentionShapes.check(q.length, k.length, v.length, cuSeqlens, t, hq, hkv, d);
        AttentionShapes.require(blockRows > 0 && blockCols > 0,
                "block sizes must be positive, got Br=" + blockRows + " Bc=" + blockCols);
    }

    private static void checkEmbedding(int[] ids, float[] table, int T, int C, String tableName) {
        checkShape(T, C);
        Objects.requireNonNull(table, tableName);
        Objects.requireNonNull(ids, "ids");
        if (C == 0 || ids.length < T) {
            throw new IllegalArgumentException("embedding needs C > 0 and T ids, got C = " + C + " and " + ids.length
                    + " ids for T = " + T);
        }
        int rows = table.length / C;
        for (int t = 0; t < T; t++) {
            if (ids[t] < 0 || ids[t] >= rows) {
                throw new IllegalArgumentException("token id " + ids[t] + " at position " + t
                        + " is outside the embedding table's " + rows + " rows");
            }
        }
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
