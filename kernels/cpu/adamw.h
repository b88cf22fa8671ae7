// AdamW step for the CPU device (longtune), compiled into the toolkit jar through JavaCPP.
// Same contract and the same arithmetic as dev.longtune.ops.AdamW (fp32 params, grads, m, v, flat; t from 1),
// PyTorch's single-tensor arrangement: every coefficient is computed in double from the double hyperparameters
// and rounded once to float, then per element, in float and in this order:
//   m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g;
//   p = p*(1 - lr*wd) - (lr/(1-b1^t)) * (m / (sqrt(v)/sqrt(1-b2^t) + eps))
// sqrt(v) is taken in double and rounded to float (equal to a correctly rounded float sqrt), as Java's
// (float) Math.sqrt(v). Results match the Java op bit for bit as long as the compiler does not contract
// a*b+c into FMA (the javacpp default -march=x86-64 has no FMA; do not add -ffast-math or -mfma) and
// std::pow agrees with Math.pow after the rounding to float (it does for the usual betas).
// Only elements [offset, offset + length) are updated; element-wise, so deterministic for any thread count.
// The loop is written with SSE2 intrinsics (4 lanes, the same IEEE operations in the same order): a scalar
// std::sqrt keeps its errno branch without -fno-math-errno, which stops g++ from vectorising the loop
// (about 4x slower). _mm_sqrt_ps is the correctly rounded float sqrt, equal to (float) sqrt((double) v).
#ifndef LONGTUNE_ADAMW_H
#define LONGTUNE_ADAMW_H

#include <cmath>
#include <cstdint>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

inline void longtune_adamw_step(float* params, const float* grads, float* m, float* v, int offset, int length,
                                double lr, double beta1, double beta2, double eps, double weightDecay, int t) {
    if (length <= 0) return;
    const float decay = (float) (1 - lr * weightDecay);
    const float b1 = (float) beta1, oneMinusB1 = (float) (1 - beta1);
    const float b2 = (float) beta2, oneMinusB2 = (float) (1 - beta2);
    const float stepSize = (float) (lr / (1 - std::pow(beta1, (double) t)));
    const float sqrtCorrection2 = (float) std::sqrt(1 - std::pow(beta2, (double) t));
    const float epsilon = (float) eps;
    const int64_t from = offset, to = (int64_t) offset + length;
#ifdef __SSE2__
    const int64_t blocks = (to - from) / 4;
    const __m128 vDecay = _mm_set1_ps(decay), vB1 = _mm_set1_ps(b1), vOneMinusB1 = _mm_set1_ps(oneMinusB1);
    const __m128 vB2 = _mm_set1_ps(b2), vOneMinusB2 = _mm_set1_ps(oneMinusB2), vStepSize = _mm_set1_ps(stepSize);
    const __m128 vSqrtCorrection2 = _mm_set1_ps(sqrtCorrection2), vEpsilon = _mm_set1_ps(epsilon);
    #pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t i = from + 4 * b;
        const __m128 g = _mm_loadu_ps(grads + i);
        const __m128 mi = _mm_add_ps(_mm_mul_ps(vB1, _mm_loadu_ps(m + i)), _mm_mul_ps(vOneMinusB1, g));
        const __m128 vi = _mm_add_ps(_mm_mul_ps(vB2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(vOneMinusB2, g), g));
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        const __m128 denominator = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), vSqrtCorrection2), vEpsilon);
        const __m128 p = _mm_loadu_ps(params + i);
        _mm_storeu_ps(params + i, _mm_sub_ps(_mm_mul_ps(p, vDecay), _mm_mul_ps(vStepSize, _mm_div_ps(mi, denominator))));
    }
    const int64_t tail = from + 4 * blocks;
#else
    const int64_t tail = from;
#endif
    for (int64_t i = tail; i < to; i++) {
        const float g = grads[i];
        const float mi = b1 * m[i] + oneMinusB1 * g;
        const float vi = b2 * v[i] + oneMinusB2 * g * g;
        m[i] = mi;
        v[i] = vi;
        const float denominator = (float) std::sqrt((double) vi) / sqrtCorrection2 + epsilon;
        params[i] = params[i] * decay - stepSize * (mi / denominator);
    }
}

#endif
