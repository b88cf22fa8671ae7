// SwiGLU for the CUDA device: the contract of dev.longtune.ops.SwiGlu, element by element, fp32 arithmetic.
//   forward:  out = (g · σ(g)) · up,  σ(g) = 1 / (1 + e^−g)
//   backward: dup += dy · (g · σ(g)),  dgate += ((dy · up) · σ(g)) · (1 + g · (1 − σ(g)))   (σ recomputed from g)
// σ is computed in fp32 with expf (full precision, as kernels/cpu/swiglu.h does); the Java op evaluates it in
// double and rounds once, so fp32 results may differ from the Java op in the last bit or two of σ.
// Launch: blockDim.x = 256, grid = ceil(n / 256) (any smaller grid is also correct: grid-stride loops); no shared memory.
// dgate or dup may be NULL when that gradient is not wanted.
#include "common.cuh"

__device__ __forceinline__ float swiglu_sigmoid(float x) {
    // finite for all x: e^−x → ∞ gives 0, e^−x → 0 gives 1
    return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
}

// gate, up (n) -> out (n)
template <typename T>
__device__ void swiglu_forward_impl(typename Carrier<T>::type* out, const typename Carrier<T>::type* gate,
                                    const typename Carrier<T>::type* up, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float g = Storage<T>::load(gate, i);
        float s = swiglu_sigmoid(g);
        Storage<T>::store(out, i, __fmul_rn(__fmul_rn(g, s), Storage<T>::load(up, i)));
    }
}

// dout, gate, up (n) -> dgate (n) +=, dup (n) +=
template <typename T>
__device__ void swiglu_backward_impl(typename Carrier<T>::type* dgate, typename Carrier<T>::type* dup,
                                     const typename Carrier<T>::type* dout, const typename Carrier<T>::type* gate,
                                     const typename Carrier<T>::type* up, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float g = Storage<T>::load(gate, i);
        float s = swiglu_sigmoid(g);
        float dy = Storage<T>::load(dout, i);
        if (dup != nullptr) {
            float silu = __fmul_rn(g, s);
            Storage<T>::store(dup, i, __fadd_rn(Storage<T>::load(dup, i), __fmul_rn(dy, silu)));
        }
        if (dgate != nullptr) {
            float u = Storage<T>::load(up, i);
            float k = __fadd_rn(1.0f, __fmul_rn(g, __fsub_rn(1.0f, s)));
            float d = __fmul_rn(__fmul_rn(__fmul_rn(dy, u), s), k);
            Storage<T>::store(dgate, i, __fadd_rn(Storage<T>::load(dgate, i), d));
        }
    }
}

#define SWIGLU_KERNELS(S, T, C)                                                                                     \
    extern "C" __global__ void swiglu_forward_##S(C* out, const C* gate, const C* up, long long n) {               \
        swiglu_forward_impl<T>(out, gate, up, n);                                                                  \
    }                                                                                                               \
    extern "C" __global__ void swiglu_backward_##S(C* dgate, C* dup, const C* dout, const C* gate, const C* up,    \
                                                   long long n) {                                                   \
        swiglu_backward_impl<T>(dgate, dup, dout, gate, up, n);                                                    \
    }

DEFINE_FOR_ALL_TYPES(SWIGLU_KERNELS)
