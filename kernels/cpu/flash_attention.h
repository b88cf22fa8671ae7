// FlashAttention-2 forward/backward for the CPU device (longtune), compiled into the toolkit jar through JavaCPP.
// Same contract and the same tiling as dev.longtune.ops.FlashAttention (fp32, row-major):
//   q, out, dq, dout (T, Hq, D); k, v, dk, dv (T, Hkv, D); lse (Hq, T); cuSeqlens (docs + 1), 0 .. T
//   causal within each packed document, query head h reads KV head h / (Hq / Hkv), scale 1 / sqrt(D).
//   forward writes out and lse (overwrites); backward adds into dq, dk, dv (+=).
// Algorithms 1 and 2 of Dao, "FlashAttention-2" (2023). Each document is tiled from its first token, so a
// tile never straddles two documents; key blocks above the diagonal are skipped.
// Threads (OpenMP): forward, one task per (query head, query tile); backward, one task per (KV head,
// document), which owns the dk/dv rows of its KV head in that document and the dq rows of its query heads.
// No two tasks write the same element and every sum runs in a fixed order, so results do not depend on the
// number of threads. The hot loops are compiled twice (target_clones): for AVX2+FMA and for baseline x86-64,
// picked at load time, since the jar cannot assume the build machine's instruction set.
#ifndef LONGTUNE_FLASH_ATTENTION_H
#define LONGTUNE_FLASH_ATTENTION_H

#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LONGTUNE_SIMD_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define LONGTUNE_SIMD_CLONES
#endif

namespace longtune_cpu {

// dst[c] += sum_{from <= j < to} coef[j] * rows[j * stride + c], c < len; four rows per pass so dst is
// loaded and stored once per four multiply-adds
static inline void fa_add_combination(float* __restrict dst, const float* __restrict coef,
                                      const float* __restrict rows, int stride, int from, int to, int len) {
    int j = from;
    for (; j + 3 < to; j += 4) {
        const float a0 = coef[j], a1 = coef[j + 1], a2 = coef[j + 2], a3 = coef[j + 3];
        const float* r0 = rows + (int64_t) j * stride;
        const float* r1 = r0 + stride;
        const float* r2 = r1 + stride;
        const float* r3 = r2 + stride;
        for (int c = 0; c < len; c++) dst[c] += a0 * r0[c] + a1 * r1[c] + a2 * r2[c] + a3 * r3[c];
    }
    for (; j < to; j++) {
        const float a = coef[j];
        const float* r = rows + (int64_t) j * stride;
        for (int c = 0; c < len; c++) dst[c] += a * r[c];
    }
}

// block[r * D + c] = x[(i0 + r, h, c)] * factor for r < count: rows of x (T, H, D)
static inline void fa_load_rows(float* block, const float* x, int i0, int count, int h, int heads, int D,
                                float factor) {
    for (int r = 0; r < count; r++) {
        const float* src = x + ((int64_t) (i0 + r) * heads + h) * D;
        for (int c = 0; c < D; c++) block[(int64_t) r * D + c] = src[c] * factor;
    }
}

// yt[c * ld + jj] = y[(j0 + jj, g, c)] for jj < cols: a block of y (T, Hkv, D) transposed to (D, ld)
static inline void fa_load_transposed(float* yt, const float* y, int j0, int cols, int ld, int g, int hkv, int D) {
    for (int jj = 0; jj < cols; jj++) {
        const float* src = y + ((int64_t) (j0 + jj) * hkv + g) * D;
        for (int c = 0; c < D; c++) yt[(int64_t) c * ld + jj] = src[c];
    }
}

// s[jj] = sum_c qrow[c] * kt[c * ld + jj] for jj < n: one row of Q·Kᵀ as a combination of the rows of Kᵀ
static inline void fa_score_row(float* __restrict s, const float* __restrict qrow, const float* __restrict kt,
                                int ld, int n, int D) {
    for (int jj = 0; jj < n; jj++) s[jj] = 0.0f;
    fa_add_combination(s, qrow, kt, ld, 0, D, n);
}

// Algorithm 1 for query rows i0 .. i1-1 of head h (KV head g), document starting at docStart
LONGTUNE_SIMD_CLONES
static void fa_forward_tile(float* out, float* lse, const float* q, const float* k, const float* v,
                            int i0, int i1, int docStart, int h, int g, int T, int Hq, int Hkv, int D,
                            int br, int bc, float scale, float* work) {
    const int rows = i1 - i0;
    float* qb = work;                      // Q·scale of the tile (Br, D)
    float* kt = qb + (int64_t) br * D;     // Kᵀ of the key block (D, Bc)
    float* vb = kt + (int64_t) D * bc;     // V of the key block (Bc, D)
    float* s = vb + (int64_t) bc * D;      // one row of scores, then probabilities (Bc)
    float* acc = s + bc;                   // unnormalised output rows (Br, D)
    float* m = acc + (int64_t) br * D;     // running row maximum (Br)
    float* l = m + br;                     // running row sum of exp(score - m) (Br)
    for (int r = 0; r < rows; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        for (int c = 0; c < D; c++) acc[(int64_t) r * D + c] = 0.0f;
    }
    fa_load_rows(qb, q, i0, rows, h, Hq, D, scale);
    for (int j0 = docStart; j0 < i1; j0 += bc) {  // keys past i1 - 1 are above the diagonal for every row
        const int cols = i1 - j0 < bc ? i1 - j0 : bc;
        fa_load_transposed(kt, k, j0, cols, bc, g, Hkv, D);
        fa_load_rows(vb, v, j0, cols, g, Hkv, D, 1.0f);
        for (int r = 0; r < rows; r++) {
            int n = i0 + r - j0 + 1;  // causal: keys j0 .. i of this block
            if (n > cols) n = cols;
            if (n <= 0) continue;
            fa_score_row(s, qb + (int64_t) r * D, kt, bc, n, D);
            float rowMax = m[r];
            for (int jj = 0; jj < n; jj++) rowMax = s[jj] > rowMax ? s[jj] : rowMax;
            float sum = 0.0f;
            for (int jj = 0; jj < n; jj++) {
                const float p = std::exp(s[jj] - rowMax);
                s[jj] = p;
                sum += p;
            }
            const float alpha = std::exp(m[r] - rowMax);  // 0 on the first block, where m = -inf
            l[r] = l[r] * alpha + sum;
            m[r] = rowMax;
            float* ar = acc + (int64_t) r * D;
            for (int c = 0; c < D; c++) ar[c] *= alpha;
            fa_add_combination(ar, s, vb, D, 0, n, D);  // acc += P·V
        }
    }
    for (int r = 0; r < rows; r++) {
        const int i = i0 + r;
        float* o = out + ((int64_t) i * Hq + h) * D;
        const float inv = 1.0f / l[r];  // l >= 1: the row maximum contributes exp(0) = 1
        for (int c = 0; c < D; c++) o[c] = acc[(int64_t) r * D + c] * inv;
        lse[(int64_t) h * T + i] = m[r] + std::log(l[r]);
    }
}

// Algorithm 2 for KV head g over the document start .. end-1: key blocks outside, and inside them every
// query head of the group and every query block at or below the diagonal. P is recomputed from lse.
LONGTUNE_SIMD_CLONES
static void fa_backward_kv_head_document(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                         const float* k, const float* v, const float* out, const float* lse,
                                         int start, int end, int g, int T, int Hq, int Hkv, int D, int br, int bc,
                                         float scale, std::vector<float>& buffer) {
    const int group = Hq / Hkv;
    const int len = end - start;
    const int64_t bd = (int64_t) bc * D, rd = (int64_t) br * D, rc = (int64_t) br * bc;
    buffer.assign((size_t) (group * len + 5 * bd + 2 * rd + D + 4 * rc), 0.0f);
    float* delta = buffer.data();         // rowsum(dO ⊙ O) per query head of the group and row (group, len)
    float* kt = delta + group * len;      // Kᵀ of the key block (D, Bc)
    float* vt = kt + bd;                  // Vᵀ of the key block (D, Bc)
    float* kb = vt + bd;                  // K of the key block (Bc, D)
    float* dkAcc = kb + bd;               // dK of the key block over the whole group (Bc, D)
    float* dvAcc = dkAcc + bd;            // dV of the key block over the whole group (Bc, D)
    float* qb = dvAcc + bd;               // Q of the query block (Br, D)
    float* dob = qb + rd;                 // dO of the query block (Br, D)
    float* dqRow = dob + rd;              // one row's dQ from this key block (D)
    float* p = dqRow + D;                 // P of the tile (Br, Bc)
    float* ds = p + rc;                   // dP, then dS·scale (Br, Bc)
    float* pt = ds + rc;                  // Pᵀ (Bc, Br)
    float* dst = pt + rc;                 // (dS·scale)ᵀ (Bc, Br)
    for (int hh = 0; hh < group; hh++) {
        const int h = g * group + hh;
        for (int i = start; i < end; i++) {
            const int64_t o = ((int64_t) i * Hq + h) * D;
            float sum = 0.0f;
            for (int c = 0; c < D; c++) sum += dout[o + c] * out[o + c];
            delta[hh * len + i - start] = sum;
        }
    }
    for (int j0 = start; j0 < end; j0 += bc) {
        const int cols = end - j0 < bc ? end - j0 : bc;
        fa_load_transposed(kt, k, j0, cols, bc, g, Hkv, D);
        fa_load_transposed(vt, v, j0, cols, bc, g, Hkv, D);
        fa_load_rows(kb, k, j0, cols, g, Hkv, D, 1.0f);
        for (int64_t x = 0; x < 2 * bd; x++) dkAcc[x] = 0.0f;  // dkAcc and dvAcc are adjacent
        for (int hh = 0; hh < group; hh++) {
            const int h = g * group + hh;
            for (int i0 = j0; i0 < end; i0 += br) {  // queries before j0 see none of this block's keys
                const int rows = end - i0 < br ? end - i0 : br;
                fa_load_rows(qb, q, i0, rows, h, Hq, D, 1.0f);
                fa_load_rows(dob, dout, i0, rows, h, Hq, D, 1.0f);
                for (int r = 0; r < rows; r++) {
                    const int i = i0 + r;
                    int n = i - j0 + 1;  // causal: keys j0 .. i of this block
                    if (n > cols) n = cols;
                    float* pr = p + (int64_t) r * bc;
                    float* dsr = ds + (int64_t) r * bc;
                    fa_score_row(pr, qb + (int64_t) r * D, kt, bc, n, D);  // S = Q·Kᵀ, scaled below
                    const float rowLse = lse[(int64_t) h * T + i];
                    for (int jj = 0; jj < n; jj++) pr[jj] = std::exp(pr[jj] * scale - rowLse);
                    fa_score_row(dsr, dob + (int64_t) r * D, vt, bc, n, D);  // dP = dO·Vᵀ
                    const float deltaI = delta[hh * len + i - start];
                    for (int jj = 0; jj < n; jj++) {
                        dsr[jj] = pr[jj] * (dsr[jj] - deltaI) * scale;
                        pt[(int64_t) jj * br + r] = pr[jj];
                        dst[(int64_t) jj * br + r] = dsr[jj];
                    }
                    for (int c = 0; c < D; c++) dqRow[c] = 0.0f;
                    fa_add_combination(dqRow, dsr, kb, D, 0, n, D);  // dQ = dS·K·scale
                    float* dqi = dq + ((int64_t) i * Hq + h) * D;
                    for (int c = 0; c < D; c++) dqi[c] += dqRow[c];  // this task owns these rows of dq
                }
                // dV += Pᵀ·dO and dK += dSᵀ·Q·scale over the rows i >= j of each key j
                for (int jj = 0; jj < cols; jj++) {
                    int from = jj - (i0 - j0);
                    if (from < 0) from = 0;
                    if (from < rows) {
                        fa_add_combination(dvAcc + (int64_t) jj * D, pt + (int64_t) jj * br, dob, D, from, rows, D);
                        fa_add_combination(dkAcc + (int64_t) jj * D, dst + (int64_t) jj * br, qb, D, from, rows, D);
                    }
                }
            }
        }
        for (int jj = 0; jj < cols; jj++) {
            const int64_t kj = ((int64_t) (j0 + jj) * Hkv + g) * D;
            for (int c = 0; c < D; c++) {
                dk[kj + c] += dkAcc[(int64_t) jj * D + c];
                dv[kj + c] += dvAcc[(int64_t) jj * D + c];
            }
        }
    }
}

} // namespace longtune_cpu

inline void longtune_flash_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                             const int* cuSeqlens, int docs, int T, int Hq, int Hkv, int D,
                                             int br, int bc) {
    // query tiles {i0, i1, docStart}: each document cut into blocks of Br rows from its first token
    std::vector<int> tiles;
    for (int doc = 0; doc < docs; doc++) {
        for (int i0 = cuSeqlens[doc]; i0 < cuSeqlens[doc + 1]; i0 += br) {
            const int i1 = i0 + br < cuSeqlens[doc + 1] ? i0 + br : cuSeqlens[doc + 1];
            tiles.push_back(i0);
            tiles.push_back(i1);
            tiles.push_back(cuSeqlens[doc]);
        }
    }
    const int count = (int) (tiles.size() / 3);
    const float scale = (float) (1.0 / std::sqrt((double) D));
    const int group = Hq / Hkv;
    const size_t workSize = (size_t) br * D * 2 + (size_t) D * bc * 2 + bc + 2 * (size_t) br;
    #pragma omp parallel
    {
        std::vector<float> work(workSize);
        #pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < Hq * count; task++) {
            const int h = task / count;
            const int* tile = tiles.data() + 3 * (task % count);
            longtune_cpu::fa_forward_tile(out, lse, q, k, v, tile[0], tile[1], tile[2], h, h / group, T, Hq, Hkv,
                                          D, br, bc, scale, work.data());
        }
    }
}

inline void longtune_flash_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                              const float* k, const float* v, const float* out, const float* lse,
                                              const int* cuSeqlens, int docs, int T, int Hq, int Hkv, int D,
                                              int br, int bc) {
    const float scale = (float) (1.0 / std::sqrt((double) D));
    #pragma omp parallel
    {
        std::vector<float> buffer;
        #pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < Hkv * docs; task++) {
            const int g = task / docs, doc = task % docs;
            if (cuSeqlens[doc + 1] > cuSeqlens[doc]) {
                longtune_cpu::fa_backward_kv_head_document(dq, dk, dv, dout, q, k, v, out, lse, cuSeqlens[doc],
                                                           cuSeqlens[doc + 1], g, T, Hq, Hkv, D, br, bc, scale,
                                                           buffer);
            }
        }
    }
}

#endif
