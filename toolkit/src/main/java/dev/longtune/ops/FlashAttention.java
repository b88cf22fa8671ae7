package dev.longtune.ops;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * FlashAttention-2 on the CPU, in fp32: causal attention over packed variable-length sequences with
 * grouped-query attention, tiled so that the T×T score matrix never exists. The forward keeps a running
 * maximum m and a running sum l per query row (online softmax) while it walks the key blocks, and saves only
 * the log-sum-exp (Hq × T floats) for the backward, which recomputes P block by block from q, k and lse.
 * Algorithms 1 and 2 of Dao, "FlashAttention-2: Faster Attention with Better Parallelism and Work
 * Partitioning" (2023); the fp64 yardstick is {@code reference.AttentionReference}.
 *
 * <p>Layout: tokens of several documents are concatenated into T tokens; {@code cuSeqlens} holds the
 * cumulative offsets (length docs+1, {@code cuSeqlens[0] = 0}, last = T). A query attends to the keys of
 * its own document up to and including its own position. As in flash_attn_varlen, each document is tiled
 * on its own (tiles start at the document's first token), so a tile never straddles two documents and the
 * key blocks of other documents are never visited; key blocks entirely above the causal diagonal are
 * skipped too. Query head h reads KV head {@code h / (Hq / Hkv)}. Scale = 1/sqrt(D).
 *
 * <p>Threads: the forward runs one task per (query head, query tile), each writing its own rows of out and
 * lse. The backward runs one task per (KV head, document): the task walks the key blocks of its document,
 * keeps dK and dV of one key block in local accumulators over every query head of its group (GQA) and every
 * query block below the diagonal, then adds them into dk and dv once; dq rows of the group's query heads
 * belong to that task alone. No two tasks write the same element, and each sum is taken in a fixed order, so
 * results are the same bit for bit from run to run whatever the number of threads.
 */
public final class FlashAttention {
    /** Query rows per tile (Br). */
    public static final int DEFAULT_BLOCK_ROWS = 64;
    /** Keys per tile (Bc). */
    public static final int DEFAULT_BLOCK_COLS = 64;

    private FlashAttention() {}

    /** {@link #forward(float[], float[], float[], float[], float[], int[], int, int, int, int, int, int)} with 64×64 tiles. */
    // q is (T, Hq, D), k and v are (T, Hkv, D), out is (T, Hq, D), lse is (Hq, T)
    public static void forward(float[] out, float[] lse, float[] q, float[] k, float[] v,
                               int[] cuSeqlens, int t, int hq, int hkv, int d) {
        forward(out, lse, q, k, v, cuSeqlens, t, hq, hkv, d, DEFAULT_BLOCK_ROWS, DEFAULT_BLOCK_COLS);
    }

    /**
     * Writes {@code out} and {@code lse} (overwritten, not accumulated); lse[h·T + i] is the log-sum-exp of
     * query i's scaled scores under head h, all the backward needs besides out.
     */
    // q is (T, Hq, D), k and v are (T, Hkv, D), out is (T, Hq, D), lse is (Hq, T)
    public static void forward(float[] out, float[] lse, float[] q, float[] k, float[] v,
                               int[] cuSeqlens, int t, int hq, int hkv, int d, int blockRows, int blockCols) {
        AttentionShapes.check(q.length, k.length, v.length, cuSeqlens, t, hq, hkv, d);
        AttentionShapes.require(out.length == q.length,
                "out has " + out.length + " elements, expected T*Hq*D = " + q.length);
        AttentionShapes.require(lse.length == hq * t, "lse has " + lse.length + " elements, expected Hq*T = " + hq * t);
        checkBlocks(blockRows, blockCols);
        float scale = (float) (1.0 / Math.sqrt(d));
        int group = hq / hkv;
        List<int[]> tiles = queryTiles(cuSeqlens, blockRows);
        IntStream.range(0, hq * tiles.size()).parallel().forEach(task -> {
            int h = task / tiles.size();
            int[] tile = tiles.get(task % tiles.size());
            forwardTile(out, lse, q, k, v, tile[0], tile[1], tile[2], h, h / group, t, hq, hkv, d,
                    blockRows, blockCols, scale);
        });
    }

    /**
     * Algorithm 1 for one query tile: rows i0..i1−1 of head h, in the document starting at docStart, against
     * key blocks docStart.. up to the diagonal. acc holds the unnormalised output rows, rescaled by
     * exp(m_old − m_new) whenever a row's maximum grows.
     */
    // q, out are (T, Hq, D); k, v are (T, Hkv, D); lse is (Hq, T)
    private static void forwardTile(float[] out, float[] lse, float[] q, float[] k, float[] v,
                                    int i0, int i1, int docStart, int h, int g, int t, int hq, int hkv, int d,
                                    int br, int bc, float scale) {
        int rows = i1 - i0;
        float[][] qb = new float[br][d];   // Q·scale of the tile (Br, D)
        float[][] kt = new float[d][bc];   // Kᵀ of the key block (D, Bc): score rows become row combinations
        float[][] vb = new float[bc][d];   // V of the key block (Bc, D)
        float[][] s = new float[br][bc];   // scores, then probabilities, of the tile (Br, Bc)
        float[][] acc = new float[br][d];  // unnormalised output rows (Br, D)
        float[] m = new float[br];         // running row maximum of the scaled scores
        float[] l = new float[br];         // running row sum of exp(score − m)
        Arrays.fill(m, Float.NEGATIVE_INFINITY);
        loadRows(qb, q, i0, rows, h, hq, d, scale);
        // Keys past i1−1 are above the diagonal for every row of the tile: stop the key blocks there.
        for (int j0 = docStart; j0 < i1; j0 += bc) {
            int cols = Math.min(bc, i1 - j0);
            loadTransposed(kt, k, j0, cols, g, hkv, d);
            loadRows(vb, v, j0, cols, g, hkv, d, 1f);
            for (int r = 0; r < rows; r++) {
                int n = Math.min(cols, i0 + r - j0 + 1); // causal: keys j0..i of this block
                if (n <= 0) {
                    continue;
                }
                float[] sr = s[r];
                Arrays.fill(sr, 0, n, 0f);
                addCombination(sr, qb[r], kt, d, n); // S = (Q·scale)·Kᵀ
                float rowMax = m[r];
                for (int jj = 0; jj < n; jj++) {
                    rowMax = Math.max(rowMax, sr[jj]);
                }
                float sum = 0;
                for (int jj = 0; jj < n; jj++) {
                    float p = (float) Math.exp(sr[jj] - rowMax);
                    sr[jj] = p;
                    sum += p;
                }
                float alpha = (float) Math.exp(m[r] - rowMax); // 0 on the first block, where m = −inf
                l[r] = l[r] * alpha + sum;
                m[r] = rowMax;
                float[] ar = acc[r];
                for (int c = 0; c < d; c++) {
                    ar[c] *= alpha;
                }
                addCombination(ar, sr, vb, n, d); // acc += P·V
            }
        }
        for (int r = 0; r < rows; r++) {
            int i = i0 + r;
            int o = (i * hq + h) * d;
            float inv = 1f / l[r]; // l ≥ 1: the row's maximum contributes exp(m − m) = 1
            for (int c = 0; c < d; c++) {
                out[o + c] = acc[r][c] * inv;
            }
            lse[h * t + i] = m[r] + (float) Math.log(l[r]);
        }
    }

    /** {@link #backward(float[], float[], float[], float[], float[], float[], float[], float[], float[], int[], int, int, int, int, int, int)} with 64×64 tiles. */
    // dq, dout, q, out are (T, Hq, D); dk, dv, k, v are (T, Hkv, D); lse is (Hq, T)
    public static void backward(float[] dq, float[] dk, float[] dv, float[] dout,
                                float[] q, float[] k, float[] v, float[] out, float[] lse,
                                int[] cuSeqlens, int t, int hq, int hkv, int d) {
        backward(dq, dk, dv, dout, q, k, v, out, lse, cuSeqlens, t, hq, hkv, d,
                DEFAULT_BLOCK_ROWS, DEFAULT_BLOCK_COLS);
    }

    /**
     * Adds (+=) the gradients with respect to q, k and v into {@code dq}, {@code dk} and {@code dv}, given
     * {@code dout}, the forward's {@code out} and {@code lse}. P = exp(S − lse) is recomputed tile by tile
     * rather than saved (it would be Hq·T²/2 floats); D_i = rowsum(dO ⊙ O) replaces rowsum(P ⊙ dP).
     */
    // dq, dout, q, out are (T, Hq, D); dk, dv, k, v are (T, Hkv, D); lse is (Hq, T)
    public static void backward(float[] dq, float[] dk, float[] dv, float[] dout,
                                float[] q, float[] k, float[] v, float[] out, float[] lse,
                                int[] cuSeqlens, int t, int hq, int hkv, int d, int blockRows, int blockCols) {
        AttentionShapes.check(q.length, k.length, v.length, cuSeqlens, t, hq, hkv, d);
        AttentionShapes.require(dq.length == q.length && dout.length == q.length && out.length == q.length,
                "dq, dout and out must have T*Hq*D = " + q.length + " elements like q");
        AttentionShapes.require(dk.length == k.length && dv.length == k.length,
                "dk and dv must have T*Hkv*D = " + k.length + " elements like k and v");
        AttentionShapes.require(lse.length == hq * t, "lse has " + lse.length + " elements, expected Hq*T = " + hq * t);
        checkBlocks(blockRows, blockCols);
        float scale = (float) (1.0 / Math.sqrt(d));
        int docs = cuSeqlens.length - 1;
        IntStream.range(0, hkv * docs).parallel().forEach(task -> {
            int g = task / docs;
            int doc = task % docs;
            if (cuSeqlens[doc + 1] > cuSeqlens[doc]) {
                backwardKvHeadDocument(dq, dk, dv, dout, q, k, v, out, lse, cuSeqlens[doc], cuSeqlens[doc + 1],
                        g, t, hq, hkv, d, blockRows, blockCols, scale);
            }
        });
    }

    /**
     * Algorithm 2 for KV head g over the document start..end−1: key blocks outside, and inside them every
     * query head of the group and every query block at or below the diagonal.
     */
    // dq, dout, q, out are (T, Hq, D); dk, dv, k, v are (T, Hkv, D); lse is (Hq, T)
    private static void backwardKvHeadDocument(float[] dq, float[] dk, float[] dv, float[] dout,
                                               float[] q, float[] k, float[] v, float[] out, float[] lse,
                                               int start, int end, int g, int t, int hq, int hkv, int d,
                                               int br, int bc, float scale) {
        int group = hq / hkv;
        int len = end - start;
        // D_i = rowsum(dO ⊙ O) for each query head of the group and each row of the document.
        float[] delta = new float[group * len];
        for (int hh = 0; hh < group; hh++) {
            int h = g * group + hh;
            for (int i = start; i < end; i++) {
                int o = (i * hq + h) * d;
                float sum = 0;
                for (int c = 0; c < d; c++) {
                    sum += dout[o + c] * out[o + c];
                }
                delta[hh * len + i - start] = sum;
            }
        }
        float[][] kt = new float[d][bc];    // Kᵀ of the key block (D, Bc)
        float[][] vt = new float[d][bc];    // Vᵀ of the key block (D, Bc)
        float[][] kb = new float[bc][d];    // K of the key block (Bc, D)
        float[][] dkAcc = new float[bc][d]; // dK of the key block (Bc, D), over the whole group
        float[][] dvAcc = new float[bc][d]; // dV of the key block (Bc, D), over the whole group
        float[][] qb = new float[br][d];    // Q of the query block (Br, D)
        float[][] dob = new float[br][d];   // dO of the query block (Br, D)
        float[] dqRow = new float[d];       // one row's dQ from this key block
        float[][] p = new float[br][bc];    // P of the tile (Br, Bc)
        float[][] ds = new float[br][bc];   // dP, then dS·scale, of the tile (Br, Bc)
        float[][] pt = new float[bc][br];   // Pᵀ (Bc, Br)
        float[][] dst = new float[bc][br];  // (dS·scale)ᵀ (Bc, Br)
        for (int j0 = start; j0 < end; j0 += bc) {
            int cols = Math.min(bc, end - j0);
            loadTransposed(kt, k, j0, cols, g, hkv, d);
            loadTransposed(vt, v, j0, cols, g, hkv, d);
            loadRows(kb, k, j0, cols, g, hkv, d, 1f);
            for (float[] row : dkAcc) {
                Arrays.fill(row, 0f);
            }
            for (float[] row : dvAcc) {
                Arrays.fill(row, 0f);
            }
            for (int hh = 0; hh < group; hh++) {
                int h = g * group + hh;
                // Queries before j0 see none of this block's keys: the query blocks start at the diagonal.
                for (int i0 = j0; i0 < end; i0 += br) {
                    int rows = Math.min(br, end - i0);
                    loadRows(qb, q, i0, rows, h, hq, d, 1f);
                    loadRows(dob, dout, i0, rows, h, hq, d, 1f);
                    for (int r = 0; r < rows; r++) {
                        int i = i0 + r;
                        int n = Math.min(cols, i - j0 + 1); // causal: keys j0..i of this block
                        float[] pr = p[r], dsr = ds[r];
                        Arrays.fill(pr, 0, n, 0f);
                        addCombination(pr, qb[r], kt, d, n); // S = Q·Kᵀ (scaled below)
                        float rowLse = lse[h * t + i];
                        for (int jj = 0; jj < n; jj++) {
                            pr[jj] = (float) Math.exp(pr[jj] * scale - rowLse);
                        }
                        Arrays.fill(dsr, 0, n, 0f);
                        addCombination(dsr, dob[r], vt, d, n); // dP = dO·Vᵀ
                        float deltaI = delta[hh * len + i - start];
                        for (int jj = 0; jj < n; jj++) {
                            dsr[jj] = pr[jj] * (dsr[jj] - deltaI) * scale;
                            pt[jj][r] = pr[jj];
                            dst[jj][r] = dsr[jj];
                        }
                        Arrays.fill(dqRow, 0f);
                        addCombination(dqRow, dsr, kb, n, d); // dQ = dS·K·scale
                        int qi = (i * hq + h) * d;
                        for (int c = 0; c < d; c++) {
                            dq[qi + c] += dqRow[c]; // this task owns these rows of dq
                        }
                    }
                    // dV += Pᵀ·dO and dK += dSᵀ·Q·scale over the rows i ≥ j of each key j.
                    for (int jj = 0; jj < cols; jj++) {
                        int from = Math.max(0, jj - (i0 - j0));
                        if (from < rows) {
                            addCombination(dvAcc[jj], pt[jj], dob, from, rows, d);
                            addCombination(dkAcc[jj], dst[jj], qb, from, rows, d);
                        }
                    }
                }
            }
            for (int jj = 0; jj < cols; jj++) {
                int kj = ((j0 + jj) * hkv + g) * d;
                for (int c = 0; c < d; c++) {
                    dk[kj + c] += dkAcc[jj][c];
                    dv[kj + c] += dvAcc[jj][c];
                }
            }
        }
    }

    /** dst[c] += Σ_{j < count} coef[j]·rows[j][c] for c < len. */
    private static void addCombination(float[] dst, float[] coef, float[][] rows, int count, int len) {
        addCombination(dst, coef, rows, 0, count, len);
    }

    /**
     * dst[c] += Σ_{from ≤ j < to} coef[j]·rows[j][c] for c < len: the one inner kernel of both passes. Rows
     * are taken four at a time so that dst is loaded and stored once per four multiply-adds; every array is
     * indexed from 0 by the same counter, which is what lets C2 vectorise the loop (with an offset between
     * two float[] it must assume they overlap and stays scalar).
     */
    private static void addCombination(float[] dst, float[] coef, float[][] rows, int from, int to, int len) {
        int j = from;
        for (; j + 3 < to; j += 4) {
            float a0 = coef[j], a1 = coef[j + 1], a2 = coef[j + 2], a3 = coef[j + 3];
            float[] r0 = rows[j], r1 = rows[j + 1], r2 = rows[j + 2], r3 = rows[j + 3];
            for (int c = 0; c < len; c++) {
                dst[c] += a0 * r0[c] + a1 * r1[c] + a2 * r2[c] + a3 * r3[c];
            }
        }
        for (; j < to; j++) {
            float a = coef[j];
            float[] r = rows[j];
            for (int c = 0; c < len; c++) {
                dst[c] += a * r[c];
            }
        }
    }

    /** block[r][c] = x[row i0 + r, head h, c]·factor for r < count: a (count, D) block of x (T, H, D). */
    private static void loadRows(float[][] block, float[] x, int i0, int count, int h, int heads, int d,
                                 float factor) {
        for (int r = 0; r < count; r++) {
            int xi = ((i0 + r) * heads + h) * d;
            float[] row = block[r];
            for (int c = 0; c < d; c++) {
                row[c] = x[xi + c] * factor;
            }
        }
    }

    /** yt[c][jj] = y[row j0 + jj, head g, c] for jj < cols: a block of y (T, Hkv, D), transposed to (D, cols). */
    private static void loadTransposed(float[][] yt, float[] y, int j0, int cols, int g, int hkv, int d) {
        for (int jj = 0; jj < cols; jj++) {
            int yj = ((j0 + jj) * hkv + g) * d;
            for (int c = 0; c < d; c++) {
                yt[c][jj] = y[yj + c];
            }
        }
    }

    /** Query tiles {i0, i1, docStart}: each document cut into blocks of Br rows from its first token. */
    private static List<int[]> queryTiles(int[] cuSeqlens, int br) {
        List<int[]> tiles = new ArrayList<>();
        for (int doc = 0; doc + 1 < cuSeqlens.length; doc++) {
            for (int i0 = cuSeqlens[doc]; i0 < cuSeqlens[doc + 1]; i0 += br) {
                tiles.add(new int[] {i0, Math.min(i0 + br, cuSeqlens[doc + 1]), cuSeqlens[doc]});
            }
        }
        return tiles;
    }

    private static void checkBlocks(int blockRows, int blockCols) {
        AttentionShapes.require(blockRows > 0 && blockCols > 0,
                "block sizes must be positive, got Br=" + blockRows + " Bc=" + blockCols);
    }
}
