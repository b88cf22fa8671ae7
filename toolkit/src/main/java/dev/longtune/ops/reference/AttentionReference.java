package dev.longtune.ops.reference;

import dev.longtune.ops.AttentionShapes;

/**
 * Plain, obviously-correct causal attention over packed variable-length sequences, in fp64: every
 * (head, query) row materialises its scaled scores and its softmax. The yardstick {@code FlashAttention} is
 * tested against; slow and memory-hungry on purpose, never used for training.
 *
 * <p>Layout, as in {@code FlashAttention}: tokens of several documents are concatenated into T tokens and
 * {@code cuSeqlens} holds the cumulative offsets (length docs+1, {@code cuSeqlens[0] = 0}, last = T). A
 * query attends to the keys of its own document at positions up to and including its own. Query head h
 * reads KV head {@code h / (Hq / Hkv)} (grouped-query attention). Scale = 1/sqrt(D).
 *
 * <pre>
 *   S = Q·Kᵀ·scale (causal, same document)    P = softmax(S)    O = P·V    lse = log Σ_j exp(S_j)
 *   dP = dO·Vᵀ    dS = P ⊙ (dP − rowsum(dO ⊙ O))    dQ = dS·K·scale    dK = dSᵀ·Q·scale    dV = Pᵀ·dO
 * </pre>
 */
public final class AttentionReference {
    private AttentionReference() {}

    /**
     * Writes {@code out} and {@code lse} (overwritten, not accumulated).
     */
    // q is (T, Hq, D), k and v are (T, Hkv, D), out is (T, Hq, D), lse is (Hq, T)
    public static void forward(double[] out, double[] lse, double[] q, double[] k, double[] v,
                               int[] cuSeqlens, int t, int hq, int hkv, int d) {
        AttentionShapes.check(q.length, k.length, v.length, cuSeqlens, t, hq, hkv, d);
        check(out.length == t * hq * d, "out has " + out.length + " elements, expected T*Hq*D = " + t * hq * d);
        check(lse.length == hq * t, "lse has " + lse.length + " elements, expected Hq*T = " + hq * t);
        double scale = 1.0 / Math.sqrt(d);
        int group = hq / hkv;
        for (int h = 0; h < hq; h++) {
            int g = h / group;
            for (int doc = 0; doc + 1 < cuSeqlens.length; doc++) {
                int start = cuSeqlens[doc];
                for (int i = start; i < cuSeqlens[doc + 1]; i++) {
                    double[] p = softmaxRow(q, k, start, i, h, g, hq, hkv, d, scale);
                    double logSumExp = p[p.length - 1];
                    lse[h * t + i] = logSumExp;
                    int o = (i * hq + h) * d;
                    for (int c = 0; c < d; c++) {
                        double sum = 0;
                        for (int j = start; j <= i; j++) {
                            sum += p[j - start] * v[(j * hkv + g) * d + c];
                        }
                        out[o + c] = sum;
                    }
                }
            }
        }
    }

    /**
     * Adds (+=) the gradients of the loss with respect to q, k and v into {@code dq}, {@code dk} and
     * {@code dv}, given {@code dout} and the forward's {@code out}. P is materialised again from q and k.
     */
    // dq, dout, q, out are (T, Hq, D); dk, dv, k, v are (T, Hkv, D)
    public static void backward(double[] dq, double[] dk, double[] dv, double[] dout,
                                double[] q, double[] k, double[] v, double[] out,
                                int[] cuSeqlens, int t, int hq, int hkv, int d) {
        AttentionShapes.check(q.length, k.length, v.length, cuSeqlens, t, hq, hkv, d);
        check(dq.length == q.length && dout.length == q.length && out.length == q.length,
                "dq, dout and out must have T*Hq*D = " + q.length + " elements like q");
        check(dk.length == k.length && dv.length == k.length,
                "dk and dv must have T*Hkv*D = " + k.length + " elements like k and v");
        double scale = 1.0 / Math.sqrt(d);
        int group = hq / hkv;
        for (int h = 0; h < hq; h++) {
            int g = h / group;
            for (int doc = 0; doc + 1 < cuSeqlens.length; doc++) {
                int start = cuSeqlens[doc];
                for (int i = start; i < cuSeqlens[doc + 1]; i++) {
                    double[] p = softmaxRow(q, k, start, i, h, g, hq, hkv, d, scale);
                    int qi = (i * hq + h) * d;
                    double rowDot = 0; // rowsum(dO ⊙ O)
                    for (int c = 0; c < d; c++) {
                        rowDot += dout[qi + c] * out[qi + c];
                    }
                    for (int j = start; j <= i; j++) {
                        int kj = (j * hkv + g) * d;
                        double pij = p[j - start];
                        double dp = 0;
                        for (int c = 0; c < d; c++) {
                            dp += dout[qi + c] * v[kj + c];
                        }
                        double ds = pij * (dp - rowDot);
                        for (int c = 0; c < d; c++) {
                            dq[qi + c] += ds * k[kj + c] * scale;
                            dk[kj + c] += ds * q[qi + c] * scale;
                            dv[kj + c] += pij * dout[qi + c];
                        }
                    }
                }
            }
        }
    }

    /**
     * Softmax of query i's scaled scores against keys start..i of its document; the last element holds the
     * log-sum-exp of the scores (length i − start + 2).
     */
    private static double[] softmaxRow(double[] q, double[] k, int start, int i, int h, int g,
                                       int hq, int hkv, int d, double scale) {
        int n = i - start + 1;
        double[] p = new double[n + 1];
        int qi = (i * hq + h) * d;
        double max = Double.NEGATIVE_INFINITY;
        for (int j = start; j <= i; j++) {
            int kj = (j * hkv + g) * d;
            double s = 0;
            for (int c = 0; c < d; c++) {
                s += q[qi + c] * k[kj + c];
            }
            p[j - start] = s * scale;
            max = Math.max(max, s * scale);
        }
        double sum = 0;
        for (int x = 0; x < n; x++) {
            p[x] = Math.exp(p[x] - max);
            sum += p[x];
        }
        for (int x = 0; x < n; x++) {
            p[x] /= sum;
        }
        p[n] = max + Math.log(sum);
        return p;
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }
}
