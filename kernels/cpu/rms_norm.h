// RMSNorm forward/backward for the CPU device (longtune), compiled into the toolkit jar through JavaCPP.
// Same contract as dev.longtune.ops.RmsNorm (fp32, row-major):
//   inp (N, C), weight (C), out (N, C), rstd (N)
//   forward:  rstd[n] = 1 / sqrt(mean(x^2) + eps), out = x * rstd * w
//   backward: g = dy * w, xhat = x * rstd,
//             dinp += rstd * (g - xhat * mean(g * xhat)),   dweight += sum_rows dy * xhat
// Rows run in parallel (OpenMP). Row reductions use 8 fp32 lanes summed in a fixed order. dweight is reduced
// deterministically: rows are cut into min(N, 64) blocks (a partition that depends only on N), each block
// sums into its own partial row, and partials are added in block order, so the result does not depend on
// the number of threads. dinp or dweight may be null (that gradient is not wanted).
#ifndef LONGTUNE_RMS_NORM_H
#define LONGTUNE_RMS_NORM_H

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace longtune_cpu {

static const int RMS_NORM_PARTIAL_BLOCKS = 64;

// sum over c of a[c] * b[c] in 8 fixed lanes, then the lanes in fixed order: deterministic, vectorisable
static inline float dot8(const float* a, const float* b, int C) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        for (int l = 0; l < 8; l++) acc[l] += a[c + l] * b[c + l];
    }
    for (; c < C; c++) acc[c & 7] += a[c] * b[c];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// sum over c of a[c] * b[c] * d[c]
static inline float dot8x3(const float* a, const float* b, const float* d, int C) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        for (int l = 0; l < 8; l++) acc[l] += a[c + l] * b[c + l] * d[c + l];
    }
    for (; c < C; c++) acc[c & 7] += a[c] * b[c] * d[c];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

} // namespace longtune_cpu

inline void longtune_rms_norm_forward(float* out, float* rstd, const float* inp, const float* weight,
                                      int N, int C, float eps) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + (int64_t) n * C;
        float* y = out + (int64_t) n * C;
        float sumSquares = longtune_cpu::dot8(x, x, C);
        float r = (float) (1.0 / std::sqrt((double) (sumSquares / C + eps)));
        rstd[n] = r;
        for (int c = 0; c < C; c++) y[c] = (x[c] * r) * weight[c];
    }
}

inline void longtune_rms_norm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                       const float* weight, const float* rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    const int blocks = N < longtune_cpu::RMS_NORM_PARTIAL_BLOCKS ? N : longtune_cpu::RMS_NORM_PARTIAL_BLOCKS;
    std::vector<float> partial(dweight != nullptr ? (size_t) blocks * C : 0, 0.0f);
    float* part = partial.empty() ? nullptr : partial.data();
    #pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < blocks; b++) {
        const int from = (int) ((int64_t) N * b / blocks);
        const int to = (int) ((int64_t) N * (b + 1) / blocks);
        float* pw = part != nullptr ? part + (size_t) b * C : nullptr;
        for (int n = from; n < to; n++) {
            const int64_t row = (int64_t) n * C;
            const float* x = inp + row;
            const float* dy = dout + row;
            const float r = rstd[n];
            // mean(g * xhat) = rstd * sum(dy * w * x) / C; xhat is recomputed rather than saved by forward
            const float meanDot = longtune_cpu::dot8x3(dy, weight, x, C) * r / C;
            if (dinp != nullptr) {
                float* dx = dinp + row;
                for (int c = 0; c < C; c++) dx[c] += r * (dy[c] * weight[c] - (x[c] * r) * meanDot);
            }
            if (pw != nullptr) {
                for (int c = 0; c < C; c++) pw[c] += dy[c] * (x[c] * r);
            }
        }
    }
    if (dweight != nullptr) {
        // fixed block order, columns in parallel: deterministic
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            float sum = 0.0f;
            for (int b = 0; b < blocks; b++) sum += part[(size_t) b * C + c];
            dweight[c] += sum;
        }
    }
}

#endif
