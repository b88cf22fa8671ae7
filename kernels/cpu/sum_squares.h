// Sum of squares of an fp32 gradient, with the unscale fused in and a non-finite check, for global-norm
// clipping and the fp16 overflow check (longtune's host optimizer). Same result, bit for bit, as
// dev.longtune.ops.GradientClipping.scale(g, scale) followed by GradientClipping.sumOfSquares(g):
//   x[i] = x[i] * scale (float, in place; skipped when scale is 1, where it changes nothing)
//   chunks of 16,384 elements from the range's start (GradientClipping.CHUNK), each summed in order in double
//   (s += (double) x * x: the product of two floats is exact in double), then the chunk sums added in chunk
//   order, starting from 0.
// The partition depends only on n, so the sum does not depend on the number of threads. Eight chunks are summed
// side by side per task (eight independent addition chains instead of one, in AVX2 lanes where the CPU
// has them), each still in its own order, so every SIMD level gives the same bits.
// Non-finite check: the sum is finite exactly when every scaled element is (no finite float squared
// overflows a double even 2^31 times over: 2^256 · 2^31 < 2^1024), so isfinite(sum) is the inf/NaN check;
// when it fails, *firstNonFinite is the index (from the range's start) of the first inf or NaN, else -1.
#ifndef LONGTUNE_SUM_SQUARES_H
#define LONGTUNE_SUM_SQUARES_H

#include <cmath>
#include <cstdint>
#include <vector>
#include "simd_dispatch.h"
#ifdef LONGTUNE_X86_LEVELS
#include <immintrin.h>
#endif

namespace longtune_cpu {

static const int64_t SUM_SQUARES_CHUNK = 1 << 14;
static const int SUM_SQUARES_SIDE_BY_SIDE = 8;

// chunk sums of `chunks` consecutive full chunks starting at x, written to partial[0 .. chunks)
template <bool SCALE>
static inline void sum_squares_chunks(float* x, float scale, int chunks, double* partial) {
    double s[SUM_SQUARES_SIDE_BY_SIDE] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (chunks == SUM_SQUARES_SIDE_BY_SIDE) {
        for (int64_t i = 0; i < SUM_SQUARES_CHUNK; i++) {
            for (int c = 0; c < SUM_SQUARES_SIDE_BY_SIDE; c++) {
                float xi = x[c * SUM_SQUARES_CHUNK + i];
                if (SCALE) {
                    xi *= scale;
                    x[c * SUM_SQUARES_CHUNK + i] = xi;
                }
                s[c] += (double) xi * (double) xi;
            }
        }
    } else {
        for (int c = 0; c < chunks; c++) {
            for (int64_t i = 0; i < SUM_SQUARES_CHUNK; i++) {
                float xi = x[c * SUM_SQUARES_CHUNK + i];
                if (SCALE) {
                    xi *= scale;
                    x[c * SUM_SQUARES_CHUNK + i] = xi;
                }
                s[c] += (double) xi * (double) xi;
            }
        }
    }
    for (int c = 0; c < chunks; c++) partial[c] = s[c];
}

#ifdef LONGTUNE_X86_LEVELS
// Eight full chunks side by side with AVX2: 8 floats from each chunk, transposed so that row k holds element
// i+k of every chunk, converted to double and added in order into lanes that each belong to one chunk. Each
// chunk's sum sees the same additions in the same order as the scalar loop (the product of two floats is
// exact in double, so only the additions round); twice the scalar loop's speed, which is bound by
// instructions rather than memory on a few cores.
template <bool SCALE>
__attribute__((target("avx2")))
static void sum_squares_8_chunks_avx2(float* x, float scale, double* partial) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();   // chunks 0-3, 4-7
    const __m256 vs = _mm256_set1_ps(scale);
    for (int64_t i = 0; i < SUM_SQUARES_CHUNK; i += 8) {
        __m256 r[8];
        for (int c = 0; c < 8; c++) {
            r[c] = _mm256_loadu_ps(x + c * SUM_SQUARES_CHUNK + i);
            if (SCALE) {
                r[c] = _mm256_mul_ps(r[c], vs);
                _mm256_storeu_ps(x + c * SUM_SQUARES_CHUNK + i, r[c]);
            }
        }
        const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 rows[8] = {
            _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
            _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
            _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
            _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
        for (int k = 0; k < 8; k++) {   // element i+k of chunks 0-3 and 4-7
            const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(rows[k]));
            const __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(rows[k], 1));
            lo = _mm256_add_pd(lo, _mm256_mul_pd(a, a));
            hi = _mm256_add_pd(hi, _mm256_mul_pd(b, b));
        }
    }
    _mm256_storeu_pd(partial, lo);
    _mm256_storeu_pd(partial + 4, hi);
}
#endif

template <bool SCALE>
static inline double sum_squares_tail(float* x, int64_t n, float scale) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float xi = x[i];
        if (SCALE) {
            xi *= scale;
            x[i] = xi;
        }
        s += (double) xi * (double) xi;
    }
    return s;
}

template <bool SCALE>
static double sum_squares(float* x, int64_t n, float scale) {
    const int64_t full = n / SUM_SQUARES_CHUNK, chunks = (n + SUM_SQUARES_CHUNK - 1) / SUM_SQUARES_CHUNK;
    const int64_t groups = (full + SUM_SQUARES_SIDE_BY_SIDE - 1) / SUM_SQUARES_SIDE_BY_SIDE;
    std::vector<double> partial((size_t) chunks);
    double* part = partial.data();
    const int level = simd_level_ref();
    #pragma omp parallel for schedule(static) if (groups > 1)
    for (int64_t gi = 0; gi < groups; gi++) {
        const int64_t first = gi * SUM_SQUARES_SIDE_BY_SIDE;
        const int count = (int) std::min<int64_t>(SUM_SQUARES_SIDE_BY_SIDE, full - first);
#ifdef LONGTUNE_X86_LEVELS
        if (level >= 1 && count == SUM_SQUARES_SIDE_BY_SIDE) {
            sum_squares_8_chunks_avx2<SCALE>(x + first * SUM_SQUARES_CHUNK, scale, part + first);
            continue;
        }
#endif
        (void) level;
        sum_squares_chunks<SCALE>(x + first * SUM_SQUARES_CHUNK, scale, count, part + first);
    }
    if (full < chunks) part[full] = sum_squares_tail<SCALE>(x + full * SUM_SQUARES_CHUNK, n - full * SUM_SQUARES_CHUNK, scale);
    double sum = 0.0;
    for (int64_t c = 0; c < chunks; c++) sum += part[c];
    return sum;
}

}  // namespace longtune_cpu

// x holds [offset, offset + n); returns Σ (x·scale)², scaling x in place when scale != 1; firstNonFinite
// (nullable) gets the index, relative to offset, of the first non-finite scaled element, or -1
inline double longtune_sum_squares(float* x, int64_t offset, int64_t n, float scale, int64_t* firstNonFinite) {
    using namespace longtune_cpu;
    if (firstNonFinite != nullptr) *firstNonFinite = -1;
    if (n <= 0) return 0.0;
    float* start = x + offset;
    const double sum = scale == 1.0f ? sum_squares<false>(start, n, scale) : sum_squares<true>(start, n, scale);
    if (!std::isfinite(sum) && firstNonFinite != nullptr) {
        for (int64_t i = 0; i < n; i++) {
            if (!std::isfinite(start[i])) {
                *firstNonFinite = i;
                break;
            }
        }
    }
    return sum;
}

#endif
