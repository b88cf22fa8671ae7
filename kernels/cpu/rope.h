// Rotary position embedding for the CPU device (longtune), compiled into the toolkit jar through JavaCPP.
// Same contract as dev.longtune.ops.Rope (fp32, row-major, in place, HF rotate_half layout):
//   q (T, Hq, D), k (T, Hkv, D) or null, positions (T), invFreq (D/2, double, e.g. Rope.inverseFrequencies
//   with Llama 3 scaling). Pair i is (x[i], x[i + D/2]), angle a = positions[t] * invFreq[i]:
//   forward:  y[i] = x[i]*cos a - x[i+half]*sin a,  y[i+half] = x[i+half]*cos a + x[i]*sin a
//   backward: the same with -a (the transposed rotation), applied in place to dq, dk: overwrites, not adds.
// The angle and its cos/sin are computed in double and rounded to float once, per token (shared by all
// heads), as the Java op does. Tokens run in parallel (OpenMP); element-wise, so deterministic.
#ifndef LONGTUNE_ROPE_H
#define LONGTUNE_ROPE_H

#include <cmath>
#include <cstdint>
#include <vector>

namespace longtune_cpu {

static inline void rope_rotate_token(float* x, int heads, int D, const float* cs, const float* sn) {
    const int half = D / 2;
    for (int h = 0; h < heads; h++) {
        float* head = x + (int64_t) h * D;
        for (int i = 0; i < half; i++) {
            const float x1 = head[i];
            const float x2 = head[i + half];
            head[i] = x1 * cs[i] - x2 * sn[i];
            head[i + half] = x2 * cs[i] + x1 * sn[i];
        }
    }
}

static inline void rope_rotate(float* q, float* k, const int* positions, const double* invFreq,
                               int T, int Hq, int Hkv, int D, double direction) {
    const int half = D / 2;
    if (T <= 0 || half <= 0) return;
    #pragma omp parallel
    {
        std::vector<float> cs(half), sn(half);
        #pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            const double position = positions[t];
            for (int i = 0; i < half; i++) {
                const double angle = position * invFreq[i];
                cs[i] = (float) std::cos(angle);
                sn[i] = (float) (direction * std::sin(angle));
            }
            rope_rotate_token(q + (int64_t) t * Hq * D, Hq, D, cs.data(), sn.data());
            if (k != nullptr) rope_rotate_token(k + (int64_t) t * Hkv * D, Hkv, D, cs.data(), sn.data());
        }
    }
}

} // namespace longtune_cpu

inline void longtune_rope_forward(float* q, float* k, const int* positions, const double* invFreq,
                                  int T, int Hq, int Hkv, int D) {
    longtune_cpu::rope_rotate(q, k, positions, invFreq, T, Hq, Hkv, D, 1.0);
}

inline void longtune_rope_backward(float* dq, float* dk, const int* positions, const double* invFreq,
                                   int T, int Hq, int Hkv, int D) {
    longtune_cpu::rope_rotate(dq, dk, positions, invFreq, T, Hq, Hkv, D, -1.0);
}

#endif
