// SwiGLU gate for the CPU device (longtune), compiled into the toolkit jar through JavaCPP.
// Same contract as dev.longtune.ops.SwiGlu (fp32, row-major): gate (N, F), up (N, F), out (N, F)
//   forward:  out = silu(gate) * up, silu(g) = g * sigmoid(g)
//   backward: dup += dout * silu(g),  dgate += dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g)))
// Rows run in parallel (OpenMP); element-wise, so deterministic.
#ifndef LONGTUNE_SWIGLU_H
#define LONGTUNE_SWIGLU_H

#include <cmath>
#include <cstdint>

namespace longtune_cpu {
// 1 / (1 + e^-x): finite for all x (e^-x -> inf gives 0, e^-x -> 0 gives 1)
static inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }
}

inline void longtune_swiglu_forward(float* out, const float* gate, const float* up, int N, int F) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const int64_t row = (int64_t) n * F;
        for (int64_t i = row; i < row + F; i++) {
            const float g = gate[i];
            out[i] = g * longtune_cpu::sigmoidf(g) * up[i];
        }
    }
}

inline void longtune_swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                                     const float* up, int N, int F) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const int64_t row = (int64_t) n * F;
        for (int64_t i = row; i < row + F; i++) {
            const float g = gate[i];
            const float s = longtune_cpu::sigmoidf(g);
            const float dy = dout[i];
            if (dup != nullptr) dup[i] += dy * (g * s);
            if (dgate != nullptr) dgate[i] += dy * up[i] * s * (1.0f + g * (1.0f - s));
        }
    }
}

#endif
