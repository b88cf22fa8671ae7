// Element-wise kernels for the CUDA device (CpuDevice.add / accumulate / copy, the gradient clipping of
// dev.longtune.ops.GradientClipping): fp32 arithmetic, each output rounded once to its storage type.
//   add_{s}(out, a, b, n)           out = a + b
//   accumulate_{s}(dst, src, n)     dst += src
//   scale_{s}(x, s, n)              x *= s                 (clipping, loss-scale unscaling)
//   cast_{src}_to_{dst}(dst, src, n) dst = src rounded to dst's type (round to nearest even); all 9 ordered pairs
//   sum_squares_{s}(partial, x, n, scale)  partial[blockIdx.x] = Σ (double) (x_i·scale)² over the block's grid-stride
//                                   share, x_i·scale rounded to float (scale 1: Σ x_i²)
// Launch: blockDim.x = 256 (sum_squares: any multiple of 32 up to 1024), no dynamic shared memory.
//   add / accumulate / scale / cast: grid = ceil(n / 256) (any grid is correct: grid-stride loops)
//   sum_squares: grid = G = min(ceil(n / 256), 1024), partial holds G doubles; the host adds them in order 0..G−1.
//   Inside a block the sum has a fixed order (per-thread grid-stride sums, then a fixed tree), so for a given n
//   the result is reproducible. A non-finite element makes the sum non-finite (the loss scaler's overflow check).
#include "common.cuh"

template <typename T>
__device__ void add_impl(typename Carrier<T>::type* out, const typename Carrier<T>::type* a,
                         const typename Carrier<T>::type* b, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        Storage<T>::store(out, i, __fadd_rn(Storage<T>::load(a, i), Storage<T>::load(b, i)));
    }
}

template <typename T>
__device__ void accumulate_impl(typename Carrier<T>::type* dst, const typename Carrier<T>::type* src, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        Storage<T>::store(dst, i, __fadd_rn(Storage<T>::load(dst, i), Storage<T>::load(src, i)));
    }
}

template <typename T>
__device__ void scale_impl(typename Carrier<T>::type* x, float s, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        Storage<T>::store(x, i, __fmul_rn(Storage<T>::load(x, i), s));
    }
}

template <typename TD, typename TS>
__device__ void cast_impl(typename Carrier<TD>::type* dst, const typename Carrier<TS>::type* src, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        Storage<TD>::store(dst, i, Storage<TS>::load(src, i));
    }
}

template <typename T>
__device__ void sum_squares_impl(double* partial, const typename Carrier<T>::type* x, long long n, float scale) {
    double s = 0.0;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        // x·scale rounded to float first: the bits of scale_{s} followed by sum_squares (× 1 changes nothing)
        double v = (double) __fmul_rn(Storage<T>::load(x, i), scale);
        s += v * v; // exact product of two floats; the add rounds in double, as GradientClipping does
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

#define ELEMENTWISE_KERNELS(S, T, C)                                                                                \
    extern "C" __global__ void add_##S(C* out, const C* a, const C* b, long long n) { add_impl<T>(out, a, b, n); } \
    extern "C" __global__ void accumulate_##S(C* dst, const C* src, long long n) { accumulate_impl<T>(dst, src, n); } \
    extern "C" __global__ void scale_##S(C* x, float s, long long n) { scale_impl<T>(x, s, n); }                  \
    extern "C" __global__ void sum_squares_##S(double* partial, const C* x, long long n, float scale) {           \
        sum_squares_impl<T>(partial, x, n, scale);                                                                 \
    }

DEFINE_FOR_ALL_TYPES(ELEMENTWISE_KERNELS)

#define CAST_KERNEL(SS, TS, CS, SD, TD, CD)                                                                         \
    extern "C" __global__ void cast_##SS##_to_##SD(CD* dst, const CS* src, long long n) {                         \
        cast_impl<TD, TS>(dst, src, n);                                                                            \
    }

CAST_KERNEL(f32, float, float, f32, float, float)
CAST_KERNEL(f32, float, float, bf16, bf16_t, bf16_t)
CAST_KERNEL(f32, float, float, f16, f16_tag, f16_t)
CAST_KERNEL(bf16, bf16_t, bf16_t, f32, float, float)
CAST_KERNEL(bf16, bf16_t, bf16_t, bf16, bf16_t, bf16_t)
CAST_KERNEL(bf16, bf16_t, bf16_t, f16, f16_tag, f16_t)
CAST_KERNEL(f16, f16_tag, f16_t, f32, float, float)
CAST_KERNEL(f16, f16_tag, f16_t, bf16, bf16_t, bf16_t)
CAST_KERNEL(f16, f16_tag, f16_t, f16, f16_tag, f16_t)
