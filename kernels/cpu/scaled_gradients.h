// The host optimizer's two passes over gradients kept where backward left them (longtune's ZeRO-3 offload:
// 16-bit gradients in pinned host memory; on the CPU device, floats), without an FP32 copy of all gradients:
//   longtune_sum_squares_scaled: Σ (x·unscale)² for the global norm and the fp16 overflow check, x unchanged
//   longtune_adamw_step_scaled:  AdamW (adamw.h) reading g = (x·unscale)·gradScale
// x is read as floats (GRAD_FLOAT), bf16 bits (GRAD_BF16) or fp16 bits (GRAD_FP16). Each block of x is decoded and
// multiplied by `unscale` into a small per-thread buffer (L1/L2 resident), and the buffer goes through the same
// code as fp32 gradients; so the results are bit for bit those of decoding all gradients into FP32, scaling them
// in place by `unscale` (GradientClipping.scale, sum_squares.h) and then running AdamW with gradScale = the
// clipping coefficient: the products are the same floats in the same order, and the chunks of the sum the same.
#ifndef LONGTUNE_SCALED_GRADIENTS_H
#define LONGTUNE_SCALED_GRADIENTS_H

#include <cstdint>
#include "adamw.h"
#include "sum_squares.h"

#define LONGTUNE_GRAD_FLOAT 0
#define LONGTUNE_GRAD_BF16 1
#define LONGTUNE_GRAD_FP16 2

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

namespace longtune_cpu {

// dst[0, n) = decode(x[from, from + n)) * unscale (the multiply skipped when unscale is 1, where it changes nothing)
static inline void decode_scaled(const void* x, int kind, int64_t from, int64_t n, float unscale, float* dst) {
    if (kind == LONGTUNE_GRAD_FLOAT) {
        std::memcpy(dst, (const float*) x + from, (size_t) n * sizeof(float));
    } else if (kind == LONGTUNE_GRAD_BF16) {
        const uint16_t* h = (const uint16_t*) x + from;
        for (int64_t i = 0; i < n; i++) dst[i] = bits_float((uint32_t) h[i] << 16);
    } else {
        const uint16_t* h = (const uint16_t*) x + from;
        for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_float(h[i]);
    }
    if (unscale != 1.0f) {
        for (int64_t i = 0; i < n; i++) dst[i] *= unscale;
    }
}

static const int64_t SCALED_BLOCK = 4096;

template <int OUT>
static void adamw_scaled_range(const AdamWCoefficients& c, float* p, const void* grads, int gradKind, float unscale,
                               float* m, float* v, void* out, int64_t n) {
    const int level = simd_level_ref();
    parallel_range(n, 1 << 15, [&](int64_t from, int64_t to) {
        alignas(64) float g[SCALED_BLOCK];
        for (int64_t b = from; b < to; b += SCALED_BLOCK) {
            const int64_t len = std::min<int64_t>(SCALED_BLOCK, to - b);
            decode_scaled(grads, gradKind, b, len, unscale, g);
            // the buffer stands for grads[b, b + len): index it from b
            const float* shifted = g - b;
#ifdef LONGTUNE_X86_LEVELS
            if (level >= 2) adamw_avx512<OUT>(c, p, shifted, m, v, out, b, b + len);
            else if (level == 1) adamw_avx2<OUT>(c, p, shifted, m, v, out, b, b + len);
            else adamw_sse2<OUT>(c, p, shifted, m, v, out, b, b + len);
#else
            (void) level;
            adamw_scalar<OUT>(c, p, shifted, m, v, out, b, b + len);
#endif
        }
    });
}

}  // namespace longtune_cpu

// Σ (decode(x[i]) · unscale)² over [0, n), in sum_squares.h's chunks and order; x is not written.
// firstNonFinite (nullable) gets the index of the first element whose scaled value is inf or NaN, or -1.
inline double longtune_sum_squares_scaled(const void* x, int kind, int64_t n, float unscale, int64_t* firstNonFinite) {
    using namespace longtune_cpu;
    if (firstNonFinite != nullptr) *firstNonFinite = -1;
    if (n <= 0) return 0.0;
    const int64_t full = n / SUM_SQUARES_CHUNK, chunks = (n + SUM_SQUARES_CHUNK - 1) / SUM_SQUARES_CHUNK;
    const int64_t groups = (full + SUM_SQUARES_SIDE_BY_SIDE - 1) / SUM_SQUARES_SIDE_BY_SIDE;
    std::vector<double> partial((size_t) chunks);
    double* part = partial.data();
    const int level = simd_level_ref();
    #pragma omp parallel if (groups > 1)
    {
        std::vector<float> buffer((size_t) (SUM_SQUARES_SIDE_BY_SIDE * SUM_SQUARES_CHUNK));
        float* x32 = buffer.data();
        #pragma omp for schedule(static)
        for (int64_t gi = 0; gi < groups; gi++) {
            const int64_t first = gi * SUM_SQUARES_SIDE_BY_SIDE;
            const int count = (int) std::min<int64_t>(SUM_SQUARES_SIDE_BY_SIDE, full - first);
            decode_scaled(x, kind, first * SUM_SQUARES_CHUNK, count * SUM_SQUARES_CHUNK, unscale, x32);
#ifdef LONGTUNE_X86_LEVELS
            if (level >= 1 && count == SUM_SQUARES_SIDE_BY_SIDE) {
                sum_squares_8_chunks_avx2<false>(x32, 1.0f, part + first);
                continue;
            }
#endif
            (void) level;
            sum_squares_chunks<false>(x32, 1.0f, count, part + first);
        }
    }
    if (full < chunks) {
        const int64_t rest = n - full * SUM_SQUARES_CHUNK;
        std::vector<float> tail((size_t) rest);
        decode_scaled(x, kind, full * SUM_SQUARES_CHUNK, rest, unscale, tail.data());
        part[full] = sum_squares_tail<false>(tail.data(), rest, 1.0f);
    }
    double sum = 0.0;
    for (int64_t c = 0; c < chunks; c++) sum += part[c];
    if (!std::isfinite(sum) && firstNonFinite != nullptr) {
        float value;
        for (int64_t i = 0; i < n; i++) {
            decode_scaled(x, kind, i, 1, unscale, &value);
            if (!std::isfinite(value)) {
                *firstNonFinite = i;
                break;
            }
        }
    }
    return sum;
}

// AdamW over [0, n) of fp32 params, m, v with gradients g = (decode(grads[i]) · unscale) · gradScale; outKind and
// out as longtune_adamw_step_range (the new weights rounded to 16 bits, or nothing)
inline void longtune_adamw_step_scaled(float* params, const void* grads, int gradKind, float unscale, float* m, float* v,
                                       void* out, int outKind, int64_t n, float gradScale, double lr, double beta1,
                                       double beta2, double eps, double weightDecay, int t) {
    using namespace longtune_cpu;
    if (n <= 0) return;
    const AdamWCoefficients c = adamw_coefficients(gradScale, lr, beta1, beta2, eps, weightDecay, t);
    switch (outKind) {
        case LONGTUNE_ADAMW_OUT_BF16: adamw_scaled_range<LONGTUNE_ADAMW_OUT_BF16>(c, params, grads, gradKind, unscale, m, v, out, n); break;
        case LONGTUNE_ADAMW_OUT_FP16: adamw_scaled_range<LONGTUNE_ADAMW_OUT_FP16>(c, params, grads, gradKind, unscale, m, v, out, n); break;
        case LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT:
            adamw_scaled_range<LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT>(c, params, grads, gradKind, unscale, m, v, out, n); break;
        case LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT:
            adamw_scaled_range<LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT>(c, params, grads, gradKind, unscale, m, v, out, n); break;
        default: adamw_scaled_range<LONGTUNE_ADAMW_OUT_NONE>(c, params, grads, gradKind, unscale, m, v, nullptr, n); break;
    }
}

#pragma GCC pop_options

#endif
