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
__device__ void rms_norm_forward_scalar(typename Carrier<T>::type* out, float* rstd,
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
__device__ void rms_norm_backward_scalar(typename Carrier<T>::type* dinp, float* dweight_partial,
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

// The packed forms: when c is a multiple of Pack<T>::N, every row fits RMS_PACKS packs per thread and every pointer
// is 16-byte aligned, each thread keeps its packs of the row in registers (one read of x per row, not two; the
// backward keeps the weight and its dweight partial in registers across rows and fetches the next row's x and dy
// before the current row's reduction waits). Same formulas and roundings per element; the per-thread sums run
// over different elements than in the scalar form, so the reductions round differently (not bit-identical to it).
#define RMS_PACKS 2

template <typename T>
__device__ __forceinline__ bool rms_norm_packed(int c, const void* a, const void* b, const void* d, const void* e) {
    constexpr int N = Pack<T>::N;
    return c % N == 0 && c / N <= (int) blockDim.x * RMS_PACKS && aligned16(a) && aligned16(b) && aligned16(d)
           && aligned16(e);
}

template <typename T>
__device__ void rms_norm_forward_packed(typename Carrier<T>::type* out, float* rstd,
                                        const typename Carrier<T>::type* inp, const typename Carrier<T>::type* weight,
                                        int n, int c, float eps) {
    constexpr int N = Pack<T>::N;
    int row = blockIdx.x;
    if (row >= n) return;
    int packs = c / N;
    long long base = (long long) row * packs;
    float x[RMS_PACKS][N];
    float ss = 0.f;
#pragma unroll
    for (int q = 0; q < RMS_PACKS; q++) {
        int j = threadIdx.x + q * blockDim.x;
        if (j < packs) {
            Pack<T>::load(inp, base + j, x[q]);
#pragma unroll
            for (int k = 0; k < N; k++) ss = __fadd_rn(ss, __fmul_rn(x[q][k], x[q][k]));
        }
    }
    ss = block_sum(ss);
    float ms = __fadd_rn(__fdiv_rn(ss, (float) c), eps);
    float r = (float) (1.0 / sqrt((double) ms));
    if (rstd != nullptr && threadIdx.x == 0) rstd[row] = r;
#pragma unroll
    for (int q = 0; q < RMS_PACKS; q++) {
        int j = threadIdx.x + q * blockDim.x;
        if (j < packs) {
            float w[N], o[N];
            Pack<T>::load(weight, j, w);
#pragma unroll
            for (int k = 0; k < N; k++) o[k] = __fmul_rn(__fmul_rn(x[q][k], r), w[k]);
            Pack<T>::store(out, base + j, o);
        }
    }
}

template <typename T>
__device__ void rms_norm_backward_packed(typename Carrier<T>::type* dinp, float* dweight_partial,
                                         const typename Carrier<T>::type* dout, const typename Carrier<T>::type* inp,
                                         const typename Carrier<T>::type* weight, const float* rstd,
                                         int n, int c, int rows_per_block) {
    constexpr int N = Pack<T>::N;
    typedef typename Pack<T>::Raw Raw;
    long long from = (long long) blockIdx.x * rows_per_block;
    long long to = from + rows_per_block < n ? from + rows_per_block : n;
    int packs = c / N;
    float* partial = dweight_partial == nullptr ? nullptr : dweight_partial + (long long) blockIdx.x * c;
    float w[RMS_PACKS][N], pw[RMS_PACKS][N];
    Raw xr[RMS_PACKS], dyr[RMS_PACKS];
#pragma unroll
    for (int q = 0; q < RMS_PACKS; q++) {
        int j = threadIdx.x + q * blockDim.x;
#pragma unroll
        for (int k = 0; k < N; k++) pw[q][k] = 0.f;
        if (j < packs) {
            Pack<T>::load(weight, j, w[q]);
            if (from < to) {
                xr[q] = Pack<T>::fetch(inp, from * packs + j);
                dyr[q] = Pack<T>::fetch(dout, from * packs + j);
            }
        }
    }
    for (long long row = from; row < to; row++) {
        long long base = row * packs;
        float r = rstd[row];
        float xhat[RMS_PACKS][N], dy[RMS_PACKS][N], old[RMS_PACKS][N];
        float dot = 0.f;
#pragma unroll
        for (int q = 0; q < RMS_PACKS; q++) {
            int j = threadIdx.x + q * blockDim.x;
            if (j < packs) {
                float x[N];
                Pack<T>::unpack(xr[q], x);
                Pack<T>::unpack(dyr[q], dy[q]);
#pragma unroll
                for (int k = 0; k < N; k++) {
                    xhat[q][k] = __fmul_rn(x[k], r);
                    dot = __fadd_rn(dot, __fmul_rn(__fmul_rn(dy[q][k], w[q][k]), xhat[q][k]));
                }
                // in flight while the block reduces: this row's old dinp and the next row's x and dy
                if (dinp != nullptr) {
                    Pack<T>::load(dinp, base + j, old[q]);
                } else {
#pragma unroll
                    for (int k = 0; k < N; k++) old[q][k] = 0.f;
                }
                if (row + 1 < to) {
                    xr[q] = Pack<T>::fetch(inp, base + packs + j);
                    dyr[q] = Pack<T>::fetch(dout, base + packs + j);
                }
            }
        }
        dot = block_sum(dot);
        float mean_dot = __fdiv_rn(dot, (float) c);
#pragma unroll
        for (int q = 0; q < RMS_PACKS; q++) {
            int j = threadIdx.x + q * blockDim.x;
            if (j < packs) {
                float d[N];
#pragma unroll
                for (int k = 0; k < N; k++) {
                    float g = __fmul_rn(dy[q][k], w[q][k]);
                    d[k] = __fadd_rn(old[q][k], __fmul_rn(r, __fsub_rn(g, __fmul_rn(xhat[q][k], mean_dot))));
                    pw[q][k] = __fadd_rn(pw[q][k], __fmul_rn(dy[q][k], xhat[q][k]));
                }
                if (dinp != nullptr) Pack<T>::store(dinp, base + j, d);
            }
        }
    }
    if (partial != nullptr) { // an extra block (no rows) writes its zero row
#pragma unroll
        for (int q = 0; q < RMS_PACKS; q++) {
            int j = threadIdx.x + q * blockDim.x;
            if (j < packs) {
#pragma unroll
                for (int k = 0; k < N; k++) partial[(long long) j * N + k] = pw[q][k];
            }
        }
    }
}

template <typename T>
__device__ void rms_norm_forward_impl(typename Carrier<T>::type* out, float* rstd,
                                      const typename Carrier<T>::type* inp, const typename Carrier<T>::type* weight,
                                      int n, int c, float eps) {
    if (rms_norm_packed<T>(c, out, inp, weight, weight)) rms_norm_forward_packed<T>(out, rstd, inp, weight, n, c, eps);
    else rms_norm_forward_scalar<T>(out, rstd, inp, weight, n, c, eps);
}

template <typename T>
__device__ void rms_norm_backward_impl(typename Carrier<T>::type* dinp, float* dweight_partial,
                                       const typename Carrier<T>::type* dout, const typename Carrier<T>::type* inp,
                                       const typename Carrier<T>::type* weight, const float* rstd,
                                       int n, int c, int rows_per_block) {
    // dinp may be NULL (no input gradient wanted): weight stands in for it in the alignment check
    if (rms_norm_packed<T>(c, dinp == nullptr ? weight : dinp, dout, inp, weight)) {
        rms_norm_backward_packed<T>(dinp, dweight_partial, dout, inp, weight, rstd, n, c, rows_per_block);
    } else {
        rms_norm_backward_scalar<T>(dinp, dweight_partial, dout, inp, weight, rstd, n, c, rows_per_block);
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
