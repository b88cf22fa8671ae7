// RMSNorm for the CUDA device: the contract of dev.longtune.ops.RmsNorm, fp32 arithmetic, outputs rounded once.
//   forward:  rstd = 1 / sqrt(mean(x²) + eps),  out = (x · rstd) · w
//   backward: x̂ = x · rstd (recomputed, not saved), g = dy · w,
//             dinp += rstd · (g − x̂ · mean(g · x̂)),  dweight += Σ_rows dy · x̂
// Launch: blockDim.x = 256 (any multiple of 32 up to 1024 works), no dynamic shared memory.
//   rms_norm_forward:  grid = n (one block per row)
//   rms_norm_backward: grid = ceil(n / rows_per_block); block b takes rows [b·rpb, min(n, (b+1)·rpb)) in order
//                      and writes its own fp32 row dweight_partial[b·c + j] (=, not +=)
//   add_row_sums:      any grid (grid-stride over columns; ceil(c / 256) is enough): dst[j] += Σ_r partial[r·c + j],
//                      rows added in order r = 0, 1, … from 0.0f, as RmsNorm.backward adds its block partials.
// Every sum runs in a fixed order that depends only on the shape and the launch, so results are reproducible.
// The _rn intrinsics keep the compiler from fusing a multiply and an add where the Java op rounds both.
#include "common.cuh"

// inp is (n, c), weight (c) -> out (n, c), rstd (n) (rstd may be NULL)
template <typename T>
__device__ void rms_norm_forward_impl(typename Carrier<T>::type* out, float* rstd,
                                      const typename Carrier<T>::type* inp, const typename Carrier<T>::type* weight,
                                      int n, int c, float eps) {
    int row = blockIdx.x;
    if (row >= n) return;
    long long base = (long long) row * c;
    float ss = 0.f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        float x = Storage<T>::load(inp, base + j);
        ss = __fadd_rn(ss, __fmul_rn(x, x));
    }
    ss = block_sum(ss);
    // as Java: (sumSquares / C + eps) in float, then 1 / sqrt in double, rounded once to float
    float ms = __fadd_rn(__fdiv_rn(ss, (float) c), eps);
    float r = (float) (1.0 / sqrt((double) ms));
    if (rstd != nullptr && threadIdx.x == 0) rstd[row] = r;
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        float x = Storage<T>::load(inp, base + j);
        Storage<T>::store(out, base + j, __fmul_rn(__fmul_rn(x, r), Storage<T>::load(weight, j)));
    }
}

// dout, inp (n, c), weight (c), rstd (n) -> dinp (n, c) += (may be NULL), dweight_partial (gridDim.x, c) = (may be NULL)
template <typename T>
__device__ void rms_norm_backward_impl(typename Carrier<T>::type* dinp, float* dweight_partial,
                                       const typename Carrier<T>::type* dout, const typename Carrier<T>::type* inp,
                                       const typename Carrier<T>::type* weight, const float* rstd,
                                       int n, int c, int rows_per_block) {
    long long from = (long long) blockIdx.x * rows_per_block;
    long long to = from + rows_per_block < n ? from + rows_per_block : n;
    float* partial = dweight_partial == nullptr ? nullptr : dweight_partial + (long long) blockIdx.x * c;
    if (from >= to) { // an extra block (grid larger than needed): its partial row is zero
        if (partial != nullptr) for (int j = threadIdx.x; j < c; j += blockDim.x) partial[j] = 0.f;
        return;
    }
    for (long long row = from; row < to; row++) {
        long long base = row * c;
        float r = rstd[row];
        float dot = 0.f;
        for (int j = threadIdx.x; j < c; j += blockDim.x) {
            float xhat = __fmul_rn(Storage<T>::load(inp, base + j), r);
            float dy = Storage<T>::load(dout, base + j);
            dot = __fadd_rn(dot, __fmul_rn(__fmul_rn(dy, Storage<T>::load(weight, j)), xhat));
        }
        dot = block_sum(dot);
        float mean_dot = __fdiv_rn(dot, (float) c);
        // each thread owns the same columns in every row, so its partial entries need no synchronisation
        for (int j = threadIdx.x; j < c; j += blockDim.x) {
            float xhat = __fmul_rn(Storage<T>::load(inp, base + j), r);
            float dy = Storage<T>::load(dout, base + j);
            if (dinp != nullptr) {
                float g = __fmul_rn(dy, Storage<T>::load(weight, j));
                float d = __fmul_rn(r, __fsub_rn(g, __fmul_rn(xhat, mean_dot)));
                Storage<T>::store(dinp, base + j, __fadd_rn(Storage<T>::load(dinp, base + j), d));
            }
            if (partial != nullptr) {
                float p = __fmul_rn(dy, xhat);
                partial[j] = row == from ? p : __fadd_rn(partial[j], p);
            }
        }
    }
}

// partial (rows, c) fp32 -> dst (c) +=
template <typename T>
__device__ void add_row_sums_impl(typename Carrier<T>::type* dst, const float* partial, int rows, int c) {
    for (long long j = (long long) blockIdx.x * blockDim.x + threadIdx.x; j < c; j += (long long) gridDim.x * blockDim.x) {
        float sum = 0.f;
        for (int r = 0; r < rows; r++) sum = __fadd_rn(sum, partial[(long long) r * c + j]);
        Storage<T>::store(dst, j, __fadd_rn(Storage<T>::load(dst, j), sum));
    }
}

#define RMS_NORM_KERNELS(S, T, C)                                                                                   \
    extern "C" __global__ void rms_norm_forward_##S(C* out, float* rstd, const C* inp, const C* weight, int n,     \
                                                    int c, float eps) {                                             \
        rms_norm_forward_impl<T>(out, rstd, inp, weight, n, c, eps);                                               \
    }                                                                                                               \
    extern "C" __global__ void rms_norm_backward_##S(C* dinp, float* dweight_partial, const C* dout, const C* inp, \
                                                     const C* weight, const float* rstd, int n, int c,             \
                                                     int rows_per_block) {                                          \
        rms_norm_backward_impl<T>(dinp, dweight_partial, dout, inp, weight, rstd, n, c, rows_per_block);          \
    }                                                                                                               \
    extern "C" __global__ void add_row_sums_##S(C* dst, const float* partial, int rows, int c) {                  \
        add_row_sums_impl<T>(dst, partial, rows, c);                                                               \
    }

DEFINE_FOR_ALL_TYPES(RMS_NORM_KERNELS)
