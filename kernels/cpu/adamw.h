// AdamW step for the CPU device and the host optimizer of ZeRO-offload (longtune), compiled into the toolkit
// jar through JavaCPP. Same contract and the same arithmetic as dev.longtune.ops.AdamW (fp32 params, grads,
// m, v, flat; t from 1), PyTorch's single-tensor arrangement: every coefficient is computed in double from
// the double hyperparameters and rounded once to float, then per element, in float and in this order:
//   g = grad * gradScale;  m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g;
//   p = p*(1 - lr*wd) - (lr/(1-b1^t)) * (m / (sqrt(v)/sqrt(1-b2^t) + eps))
// gradScale (1 for the plain op) folds a clipping coefficient (or 1/loss scale) into the pass: g*gradScale is
// the same float product as scaling the gradient in place first, and g*1 is g. sqrt is the correctly
// rounded float sqrt, equal to Java's (float) Math.sqrt(v). No product is contracted into an FMA (the
// functions below are compiled with fp-contract=off; AVX-512F would otherwise allow it), so results match
// the Java op bit for bit on every SIMD level, as long as std::pow agrees with Math.pow after the rounding
// to float (it does for the usual betas).
//
// Optionally the new weights are also written, rounded to 16 bits, to `out` (the compute-precision copy the
// next forward reads; on a GPU machine a pinned buffer), indexed like params:
//   LONGTUNE_ADAMW_OUT_BF16 / _FP16: uint16 bits;  _BF16_AS_FLOAT / _FP16_AS_FLOAT: floats rounded to that
//   type (today's CPU tensors, DType's storage). Rounding is DType.floatToBf16 / floatToFp16: round to
//   nearest even, fp16 with subnormals and overflow to infinity; NaN stays NaN (bf16: the top bits | 0x40,
//   fp16: sign | 0x7e00).
//
// Memory-bound: per parameter it reads p, g, m, v (16 B) and writes p, m, v (12 B) plus 2 B of 16-bit
// weights. The 16-bit bits are written with non-temporal stores (AVX2 and AVX-512 levels): an ordinary store
// would first read each line of the buffer (2 B more per parameter), and the next reader is the GPU's copy
// engine, not this core's cache. Threads take contiguous ranges (simd_dispatch.h); element-wise, so any thread count gives the same
// bits. SIMD levels: SSE2 (4 lanes, baseline), AVX2 + F16C (8), AVX-512F (16, masked tail), picked at load.
#ifndef LONGTUNE_ADAMW_H
#define LONGTUNE_ADAMW_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include "simd_dispatch.h"
#ifdef LONGTUNE_X86_LEVELS
#include <immintrin.h>
#endif

#define LONGTUNE_ADAMW_OUT_NONE 0
#define LONGTUNE_ADAMW_OUT_BF16 1
#define LONGTUNE_ADAMW_OUT_FP16 2
#define LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT 3
#define LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT 4

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
// GCC 12 flags the deliberately undefined pass-through operand inside its own AVX-512 intrinsics
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace longtune_cpu {

struct AdamWCoefficients {
    float decay, b1, oneMinusB1, b2, oneMinusB2, stepSize, sqrtCorrection2, epsilon, gradScale;
};

// ---- 16-bit rounding, scalar: DType.floatToBf16 / floatToFp16 / fp16ToFloat, line for line

static inline uint32_t float_bits(float x) { uint32_t b; std::memcpy(&b, &x, 4); return b; }

static inline float bits_float(uint32_t b) { float x; std::memcpy(&x, &b, 4); return x; }

static inline uint16_t to_bf16(float x) {
    const uint32_t bits = float_bits(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t) ((bits >> 16) | 0x40u);
    return (uint16_t) ((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

static inline uint16_t to_fp16(float x) {
    const uint32_t bits = float_bits(x), sign = (bits >> 16) & 0x8000u, abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t) (sign | 0x7e00u);
    if (abs >= 0x477ff000u) return (uint16_t) (sign | 0x7c00u);           // rounds to >= 65520: infinity
    if (abs < 0x38800000u) {                                               // fp16 subnormal or zero
        if (abs < 0x33000000u) return (uint16_t) sign;
        const int shift = 126 - (int) (abs >> 23);
        const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
        uint32_t value = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (value & 1u))) value++;
        return (uint16_t) (sign | value);
    }
    const uint32_t rebased = abs - 0x38000000u;
    uint32_t value = rebased >> 13;
    const uint32_t rest = rebased & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (value & 1u))) value++;
    return (uint16_t) (sign | value);
}

static inline float bf16_to_float(uint16_t h) { return bits_float((uint32_t) h << 16); }

static inline float fp16_to_float(uint16_t h) {
    const uint32_t bits = h, sign = (bits & 0x8000u) << 16, exp = (bits >> 10) & 0x1fu, mantissa = bits & 0x3ffu;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));
    if (exp == 0) {
        const float v = (float) mantissa * 0x1p-24f;
        return sign == 0 ? v : -v;
    }
    return bits_float(sign | ((exp + 112) << 23) | (mantissa << 13));
}

template <int OUT>
static inline void store_out_scalar(void* out, int64_t i, float p) {
    if (OUT == LONGTUNE_ADAMW_OUT_BF16) ((uint16_t*) out)[i] = to_bf16(p);
    if (OUT == LONGTUNE_ADAMW_OUT_FP16) ((uint16_t*) out)[i] = to_fp16(p);
    if (OUT == LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT) ((float*) out)[i] = bf16_to_float(to_bf16(p));
    if (OUT == LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT) ((float*) out)[i] = fp16_to_float(to_fp16(p));
}

// one element, the Java op's expression; sqrt through double, as (float) Math.sqrt
template <int OUT>
static inline void adamw_scalar(const AdamWCoefficients& c, float* p, const float* grads, float* m, float* v,
                                void* out, int64_t from, int64_t to) {
    for (int64_t i = from; i < to; i++) {
        const float g = grads[i] * c.gradScale;
        const float mi = c.b1 * m[i] + c.oneMinusB1 * g;
        const float vi = c.b2 * v[i] + c.oneMinusB2 * g * g;
        m[i] = mi;
        v[i] = vi;
        const float denominator = (float) std::sqrt((double) vi) / c.sqrtCorrection2 + c.epsilon;
        const float pi = p[i] * c.decay - c.stepSize * (mi / denominator);
        p[i] = pi;
        store_out_scalar<OUT>(out, i, pi);
    }
}

#ifdef LONGTUNE_X86_LEVELS

// ---- SSE2 (baseline x86-64): 4 lanes; 16-bit output through the scalar rounding
template <int OUT>
static void adamw_sse2(const AdamWCoefficients& c, float* p, const float* grads, float* m, float* v, void* out,
                       int64_t from, int64_t to) {
    const __m128 decay = _mm_set1_ps(c.decay), b1 = _mm_set1_ps(c.b1), oneMinusB1 = _mm_set1_ps(c.oneMinusB1);
    const __m128 b2 = _mm_set1_ps(c.b2), oneMinusB2 = _mm_set1_ps(c.oneMinusB2), stepSize = _mm_set1_ps(c.stepSize);
    const __m128 sqrtCorrection2 = _mm_set1_ps(c.sqrtCorrection2), epsilon = _mm_set1_ps(c.epsilon);
    const __m128 gradScale = _mm_set1_ps(c.gradScale);
    int64_t i = from;
    for (; i + 4 <= to; i += 4) {
        const __m128 g = _mm_mul_ps(_mm_loadu_ps(grads + i), gradScale);
        const __m128 mi = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + i)), _mm_mul_ps(oneMinusB1, g));
        const __m128 vi = _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(oneMinusB2, g), g));
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        const __m128 denominator = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), sqrtCorrection2), epsilon);
        const __m128 pi = _mm_sub_ps(_mm_mul_ps(_mm_loadu_ps(p + i), decay), _mm_mul_ps(stepSize, _mm_div_ps(mi, denominator)));
        _mm_storeu_ps(p + i, pi);
        if (OUT != LONGTUNE_ADAMW_OUT_NONE) {
            alignas(16) float lanes[4];
            _mm_store_ps(lanes, pi);
            for (int l = 0; l < 4; l++) store_out_scalar<OUT>(out, i + l, lanes[l]);
        }
    }
    adamw_scalar<OUT>(c, p, grads, m, v, out, i, to);
}

// ---- AVX2 + F16C: 8 lanes

// bf16 bits of 8 floats, in the low half of each 32-bit lane
__attribute__((target("avx2,f16c")))
static inline __m256i bf16_lanes_avx2(__m256 x) {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(rounded, nan, _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
}

// fp16 bits of 8 floats: F16C rounds to nearest even with subnormals and overflow to infinity, as
// DType.floatToFp16; only NaN differs (F16C keeps the payload), so NaN lanes become sign | 0x7e00
__attribute__((target("avx2,f16c")))
static inline __m128i fp16_avx2(__m256 x) {
    const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    const __m128i nan = _mm_packs_epi32(_mm256_castsi256_si128(nan32), _mm256_extracti128_si256(nan32, 1));
    const __m128i canonical = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short) 0x8000)), _mm_set1_epi16(0x7e00));
    return _mm_blendv_epi8(h, canonical, nan);
}

// 16-bit bits go out with non-temporal stores when `out + i` is 16-byte aligned (adamw_avx2 peels to that)
template <int OUT>
__attribute__((target("avx2,f16c")))
static inline void store_out_avx2(void* out, int64_t i, __m256 p) {
    if (OUT == LONGTUNE_ADAMW_OUT_BF16) {
        const __m256i r = bf16_lanes_avx2(p);
        _mm_stream_si128((__m128i*) ((uint16_t*) out + i),
                         _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
    }
    if (OUT == LONGTUNE_ADAMW_OUT_FP16) _mm_stream_si128((__m128i*) ((uint16_t*) out + i), fp16_avx2(p));
    if (OUT == LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT)
        _mm256_storeu_ps((float*) out + i, _mm256_castsi256_ps(_mm256_slli_epi32(bf16_lanes_avx2(p), 16)));
    if (OUT == LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT) _mm256_storeu_ps((float*) out + i, _mm256_cvtph_ps(fp16_avx2(p)));
}

template <int OUT>
__attribute__((target("avx2,f16c")))
static void adamw_avx2(const AdamWCoefficients& c, float* p, const float* grads, float* m, float* v, void* out,
                       int64_t from, int64_t to) {
    const __m256 decay = _mm256_set1_ps(c.decay), b1 = _mm256_set1_ps(c.b1), oneMinusB1 = _mm256_set1_ps(c.oneMinusB1);
    const __m256 b2 = _mm256_set1_ps(c.b2), oneMinusB2 = _mm256_set1_ps(c.oneMinusB2);
    const __m256 stepSize = _mm256_set1_ps(c.stepSize), sqrtCorrection2 = _mm256_set1_ps(c.sqrtCorrection2);
    const __m256 epsilon = _mm256_set1_ps(c.epsilon), gradScale = _mm256_set1_ps(c.gradScale);
    int64_t i = from;
    if (OUT == LONGTUNE_ADAMW_OUT_BF16 || OUT == LONGTUNE_ADAMW_OUT_FP16) {
        // scalar up to a 16-byte boundary of the 16-bit copy, so that its stores can be non-temporal
        while (i < to && ((uintptr_t) ((uint16_t*) out + i) & 15) != 0) i++;
        adamw_scalar<OUT>(c, p, grads, m, v, out, from, i);
    }
    for (; i + 8 <= to; i += 8) {
        const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(grads + i), gradScale);
        const __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(oneMinusB1, g));
        const __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                        _mm256_mul_ps(_mm256_mul_ps(oneMinusB2, g), g));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        const __m256 denominator = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), sqrtCorrection2), epsilon);
        const __m256 pi = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), decay),
                                        _mm256_mul_ps(stepSize, _mm256_div_ps(mi, denominator)));
        _mm256_storeu_ps(p + i, pi);
        store_out_avx2<OUT>(out, i, pi);
    }
    if (OUT == LONGTUNE_ADAMW_OUT_BF16 || OUT == LONGTUNE_ADAMW_OUT_FP16) _mm_sfence();
    adamw_scalar<OUT>(c, p, grads, m, v, out, i, to);
}

// ---- AVX-512F: 16 lanes, the tail with masks (same operations on the valid lanes)

__attribute__((target("avx512f,avx2,f16c")))
static inline __m512i bf16_lanes_avx512(__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __m512i nan = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), rounded, nan);
}

__attribute__((target("avx512f,avx2,f16c")))
static inline __m256i fp16_avx512(__m512 x) {
    const __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i nan = _mm512_cvtepi32_epi16(_mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q),
                                                                       _mm512_set1_epi32(-1)));
    const __m256i canonical = _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16((short) 0x8000)),
                                              _mm256_set1_epi16(0x7e00));
    return _mm256_blendv_epi8(h, canonical, nan);
}

template <int OUT>
__attribute__((target("avx512f,avx2,f16c")))
static inline void store_out_avx512(void* out, int64_t i, __m512 p, __mmask16 k) {
    if (OUT == LONGTUNE_ADAMW_OUT_NONE) return;
    if (OUT == LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT) {
        _mm512_mask_storeu_ps((float*) out + i, k, _mm512_castsi512_ps(_mm512_slli_epi32(bf16_lanes_avx512(p), 16)));
        return;
    }
    if (OUT == LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT) {
        _mm512_mask_storeu_ps((float*) out + i, k, _mm512_cvtph_ps(fp16_avx512(p)));
        return;
    }
    const __m256i h = OUT == LONGTUNE_ADAMW_OUT_BF16 ? _mm512_cvtepi32_epi16(bf16_lanes_avx512(p)) : fp16_avx512(p);
    if (k == 0xffff && ((uintptr_t) ((uint16_t*) out + i) & 31) == 0) {
        _mm256_stream_si256((__m256i*) ((uint16_t*) out + i), h);
    } else if (k == 0xffff) {
        _mm256_storeu_si256((__m256i*) ((uint16_t*) out + i), h);
    } else {  // masked 16-bit stores need AVX-512BW; the tail goes through a buffer
        alignas(32) uint16_t lanes[16];
        _mm256_store_si256((__m256i*) lanes, h);
        for (int l = 0; l < 16 && (k >> l) & 1; l++) ((uint16_t*) out)[i + l] = lanes[l];
    }
}

template <int OUT>
__attribute__((target("avx512f,avx2,f16c")))
static void adamw_avx512(const AdamWCoefficients& c, float* p, const float* grads, float* m, float* v, void* out,
                         int64_t from, int64_t to) {
    const __m512 decay = _mm512_set1_ps(c.decay), b1 = _mm512_set1_ps(c.b1), oneMinusB1 = _mm512_set1_ps(c.oneMinusB1);
    const __m512 b2 = _mm512_set1_ps(c.b2), oneMinusB2 = _mm512_set1_ps(c.oneMinusB2);
    const __m512 stepSize = _mm512_set1_ps(c.stepSize), sqrtCorrection2 = _mm512_set1_ps(c.sqrtCorrection2);
    const __m512 epsilon = _mm512_set1_ps(c.epsilon), gradScale = _mm512_set1_ps(c.gradScale);
    // a 16-bit copy starts with a shorter (masked) block, so that the following ones fill whole 32-byte
    // lines of it and go out with non-temporal stores
    int64_t first = 16;
    if (OUT == LONGTUNE_ADAMW_OUT_BF16 || OUT == LONGTUNE_ADAMW_OUT_FP16) {
        const int64_t past = ((uintptr_t) ((uint16_t*) out + from) & 31) / 2;
        if (past != 0) first = 16 - past;
    }
    for (int64_t i = from, len = first; i < to; i += len, len = 16) {
        const int64_t lanes = std::min<int64_t>(len, to - i);
        const __mmask16 k = lanes == 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << lanes) - 1);
        const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, grads + i), gradScale);
        const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(oneMinusB1, g));
        const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)),
                                        _mm512_mul_ps(_mm512_mul_ps(oneMinusB2, g), g));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        const __m512 denominator = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), sqrtCorrection2), epsilon);
        const __m512 pi = _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), decay),
                                        _mm512_mul_ps(stepSize, _mm512_div_ps(mi, denominator)));
        _mm512_mask_storeu_ps(p + i, k, pi);
        store_out_avx512<OUT>(out, i, pi, k);
    }
    if (OUT == LONGTUNE_ADAMW_OUT_BF16 || OUT == LONGTUNE_ADAMW_OUT_FP16) _mm_sfence();
}

#endif  // LONGTUNE_X86_LEVELS

// every coefficient computed in double from the double hyperparameters and rounded once to float
static inline AdamWCoefficients adamw_coefficients(float gradScale, double lr, double beta1, double beta2, double eps,
                                                   double weightDecay, int t) {
    AdamWCoefficients c;
    c.decay = (float) (1 - lr * weightDecay);
    c.b1 = (float) beta1;
    c.oneMinusB1 = (float) (1 - beta1);
    c.b2 = (float) beta2;
    c.oneMinusB2 = (float) (1 - beta2);
    c.stepSize = (float) (lr / (1 - std::pow(beta1, (double) t)));
    c.sqrtCorrection2 = (float) std::sqrt(1 - std::pow(beta2, (double) t));
    c.epsilon = (float) eps;
    c.gradScale = gradScale;
    return c;
}

template <int OUT>
static void adamw_range(const AdamWCoefficients& c, float* p, const float* grads, float* m, float* v, void* out,
                        int64_t n) {
    const int level = simd_level_ref();
    parallel_range(n, 1 << 15, [&](int64_t from, int64_t to) {
#ifdef LONGTUNE_X86_LEVELS
        if (level >= 2) adamw_avx512<OUT>(c, p, grads, m, v, out, from, to);
        else if (level == 1) adamw_avx2<OUT>(c, p, grads, m, v, out, from, to);
        else adamw_sse2<OUT>(c, p, grads, m, v, out, from, to);
#else
        (void) level;
        adamw_scalar<OUT>(c, p, grads, m, v, out, from, to);
#endif
    });
}

}  // namespace longtune_cpu

// params, grads, m, v (and out, when outKind is not NONE) hold [offset, offset + n); updates that range
inline void longtune_adamw_step_range(float* params, const float* grads, float* m, float* v, void* out, int outKind,
                                      int64_t offset, int64_t n, float gradScale, double lr, double beta1,
                                      double beta2, double eps, double weightDecay, int t) {
    using namespace longtune_cpu;
    if (n <= 0) return;
    const AdamWCoefficients c = adamw_coefficients(gradScale, lr, beta1, beta2, eps, weightDecay, t);
    float* p = params + offset;
    const float* g = grads + offset;
    float* mm = m + offset;
    float* vv = v + offset;
    switch (outKind) {
        case LONGTUNE_ADAMW_OUT_BF16: adamw_range<LONGTUNE_ADAMW_OUT_BF16>(c, p, g, mm, vv, (uint16_t*) out + offset, n); break;
        case LONGTUNE_ADAMW_OUT_FP16: adamw_range<LONGTUNE_ADAMW_OUT_FP16>(c, p, g, mm, vv, (uint16_t*) out + offset, n); break;
        case LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT:
            adamw_range<LONGTUNE_ADAMW_OUT_BF16_AS_FLOAT>(c, p, g, mm, vv, (float*) out + offset, n); break;
        case LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT:
            adamw_range<LONGTUNE_ADAMW_OUT_FP16_AS_FLOAT>(c, p, g, mm, vv, (float*) out + offset, n); break;
        default: adamw_range<LONGTUNE_ADAMW_OUT_NONE>(c, p, g, mm, vv, nullptr, n); break;
    }
}

// the Java op's signature: updates [offset, offset + length), fp32 only
inline void longtune_adamw_step(float* params, const float* grads, float* m, float* v, int offset, int length,
                                double lr, double beta1, double beta2, double eps, double weightDecay, int t) {
    longtune_adamw_step_range(params, grads, m, v, nullptr, LONGTUNE_ADAMW_OUT_NONE, offset, length, 1.0f, lr, beta1,
                              beta2, eps, weightDecay, t);
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

#endif
