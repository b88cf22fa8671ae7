// SwiGLU for the CUDA device: the contract of dev.longtune.ops.SwiGlu, element by element, fp32 arithmetic.
//   forward:  out = (g · σ(g)) · up,  σ(g) = 1 / (1 + e^−g)
//   backward: dup += dy · (g · σ(g)),  dgate += ((dy · up) · σ(g)) · (1 + g · (1 − σ(g)))   (σ recomputed from g);
//             swiglu_backward_write_* writes (=) instead of adding, for gradients that start at zero
// σ is computed in fp32 with expf (full precision, as kernels/cpu/swiglu.h does); the Java op evaluates it in
// double and rounds once, so fp32 results may differ from the Java op in the last bit or two of σ.
// Launch: blockDim.x = 256, grid = ceil(n / (8 · 256)) (any grid is correct: grid-stride loops); no shared memory.
// dgate or dup may be NULL when that gradient is not wanted.
#include "common.cuh"

__device__ __forceinline__ float swiglu_sigmoid(float x) {
    // finite for all x: e^−x → ∞ gives 0, e^−x → 0 gives 1
    return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
}

// one element of each op, shared by the packed and the scalar loops (the same roundings in both)
__device__ __forceinline__ float swiglu_out(float g, float u) {
    return __fmul_rn(__fmul_rn(g, swiglu_sigmoid(g)), u);
}

// d(up) and d(gate) of one element, before any accumulation into existing gradients
__device__ __forceinline__ void swiglu_grads(float dy, float g, float u, float& du, float& dg) {
    float s = swiglu_sigmoid(g);
    du = __fmul_rn(dy, __fmul_rn(g, s));
    float k = __fadd_rn(1.0f, __fmul_rn(g, __fsub_rn(1.0f, s)));
    dg = __fmul_rn(__fmul_rn(__fmul_rn(dy, u), s), k);
}

// Bandwidth is all that matters here (a few flops per 6–10 bytes moved), so when every pointer is 16-byte
// aligned the loops move 16-byte packs (8 bf16/fp16 or 4 fp32 elements per load) and a scalar tail takes the last
// n mod N elements; otherwise (a view that starts mid-pack) the plain element loop runs.

// gate, up (n) -> out (n)
template <typename T>
__device__ void swiglu_forward_impl(typename Carrier<T>::type* __restrict__ out,
                                    const typename Carrier<T>::type* __restrict__ gate,
                                    const typename Carrier<T>::type* __restrict__ up, long long n) {
    constexpr int N = Pack<T>::N;
    long long first = (long long) blockIdx.x * blockDim.x + threadIdx.x, stride = (long long) gridDim.x * blockDim.x;
    long long tail = 0;
    if (aligned16(out) && aligned16(gate) && aligned16(up)) {
        long long packs = n / N;
        for (long long p = first; p < packs; p += stride) {
            float g[N], u[N], o[N];
            Pack<T>::load(gate, p, g);
            Pack<T>::load(up, p, u);
#pragma unroll
            for (int k = 0; k < N; k++) o[k] = swiglu_out(g[k], u[k]);
            Pack<T>::store(out, p, o);
        }
        tail = packs * N;
    }
    for (long long i = tail + first; i < n; i += stride) {
        Storage<T>::store(out, i, swiglu_out(Storage<T>::load(gate, i), Storage<T>::load(up, i)));
    }
}

// dout, gate, up (n) -> dgate (n), dup (n): ACC adds into them (+=), otherwise they are written (=, fresh
// gradients: no read of the old values, 2 of the 7 tensor passes saved)
template <typename T, bool ACC>
__device__ void swiglu_backward_impl(typename Carrier<T>::type* __restrict__ dgate,
                                     typename Carrier<T>::type* __restrict__ dup,
                                     const typename Carrier<T>::type* __restrict__ dout,
                                     const typename Carrier<T>::type* __restrict__ gate,
                                     const typename Carrier<T>::type* __restrict__ up, long long n) {
    constexpr int N = Pack<T>::N;
    long long first = (long long) blockIdx.x * blockDim.x + threadIdx.x, stride = (long long) gridDim.x * blockDim.x;
    long long tail = 0;
    if (dgate != nullptr && dup != nullptr && aligned16(dgate) && aligned16(dup) && aligned16(dout)
            && aligned16(gate) && aligned16(up)) {
        long long packs = n / N;
        for (long long p = first; p < packs; p += stride) {
            float dy[N], g[N], u[N], du[N], dg[N];
            Pack<T>::load(dout, p, dy);
            Pack<T>::load(gate, p, g);
            Pack<T>::load(up, p, u);
#pragma unroll
            for (int k = 0; k < N; k++) swiglu_grads(dy[k], g[k], u[k], du[k], dg[k]);
            if (ACC) {
                float old_du[N], old_dg[N];
                Pack<T>::load(dup, p, old_du);
                Pack<T>::load(dgate, p, old_dg);
#pragma unroll
                for (int k = 0; k < N; k++) {
                    du[k] = __fadd_rn(old_du[k], du[k]);
                    dg[k] = __fadd_rn(old_dg[k], dg[k]);
                }
            }
            Pack<T>::store(dup, p, du);
            Pack<T>::store(dgate, p, dg);
        }
        tail = packs * N;
    }
    for (long long i = tail + first; i < n; i += stride) {
        float du, dg;
        swiglu_grads(Storage<T>::load(dout, i), Storage<T>::load(gate, i), Storage<T>::load(up, i), du, dg);
        if (dup != nullptr) Storage<T>::store(dup, i, ACC ? __fadd_rn(Storage<T>::load(dup, i), du) : du);
        if (dgate != nullptr) Storage<T>::store(dgate, i, ACC ? __fadd_rn(Storage<T>::load(dgate, i), dg) : dg);
    }
}

#define SWIGLU_KERNELS(S, T, C)                                                                                     \
    extern "C" __global__ void swiglu_forward_##S(C* out, const C* gate, const C* up, long long n) {               \
        swiglu_forward_impl<T>(out, gate, up, n);                                                                  \
    }                                                                                                               \
    extern "C" __global__ void swiglu_backward_##S(C* dgate, C* dup, const C* dout, const C* gate, const C* up,    \
                                                   long long n) {                                                   \
        swiglu_backward_impl<T, true>(dgate, dup, dout, gate, up, n);                                              \
    }                                                                                                               \
    extern "C" __global__ void swiglu_backward_write_##S(C* dgate, C* dup, const C* dout, const C* gate,           \
                                                         const C* up, long long n) {                                \
        swiglu_backward_impl<T, false>(dgate, dup, dout, gate, up, n);                                             \
    }

DEFINE_FOR_ALL_TYPES(SWIGLU_KERNELS)
