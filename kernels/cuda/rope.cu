// RoPE for the CUDA device: the contract of dev.longtune.ops.Rope (HF rotate_half layout, Llama 3 scaled inv_freq
// computed on the host by Rope.inverseFrequencies). For a head vector x of size d, half = d/2, pair i is
// (x[i], x[i + half]) and turns by a = position · inv_freq[i]:
//   y[i] = x[i]·cos a − x[i + half]·sin a,   y[i + half] = x[i + half]·cos a + x[i]·sin a
// Backward (inverse = 1) turns by −a in place: it overwrites the gradient, it does not add (as Rope.backward).
// Launch: blockDim.x = 256, no dynamic shared memory, any grid (grid-stride loops).
//   rope_table:  grid = ceil(t·half / 256)      the angle and its cos/sin in double, rounded once to float
//   rope_rotate: grid = ceil(t·heads·half / 256) called once for q (heads = Hq) and once for k (heads = Hkv)
//                with the same table; cos/sin are (t, half) fp32, shared by all heads of a token.
#include "common.cuh"

// positions (t), inv_freq (half) -> cos_out, sin_out (t, half)
extern "C" __global__ void rope_table(float* cos_out, float* sin_out, const int* positions, const double* inv_freq,
                                      int t, int half) {
    long long total = (long long) t * half;
    for (long long idx = (long long) blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long) gridDim.x * blockDim.x) {
        long long tok = idx / half;
        int i = (int) (idx - tok * half);
        double angle = (double) positions[tok] * inv_freq[i];
        cos_out[idx] = (float) cos(angle);
        sin_out[idx] = (float) sin(angle);
    }
}

// x (t, heads, d) rotated in place; cos, sin (t, d/2); inverse != 0 rotates by −a
template <typename T>
__device__ void rope_rotate_impl(typename Carrier<T>::type* x, const float* cos_t, const float* sin_t, int t,
                                 int heads, int d, int inverse) {
    int half = d / 2;
    long long total = (long long) t * heads * half;
    for (long long idx = (long long) blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long) gridDim.x * blockDim.x) {
        long long pair_row = idx / half;          // token · heads + head
        int i = (int) (idx - pair_row * half);
        long long tok = pair_row / heads;
        long long head = pair_row * d;
        float c = cos_t[tok * half + i];
        float s = sin_t[tok * half + i];
        if (inverse) s = -s;                       // exact: (float) (−sin a) == −(float) sin a
        float x1 = Storage<T>::load(x, head + i);
        float x2 = Storage<T>::load(x, head + i + half);
        Storage<T>::store(x, head + i, __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));
        Storage<T>::store(x, head + i + half, __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
    }
}

#define ROPE_KERNELS(S, T, C)                                                                                       \
    extern "C" __global__ void rope_rotate_##S(C* x, const float* cos_t, const float* sin_t, int t, int heads,      \
                                               int d, int inverse) {                                                \
        rope_rotate_impl<T>(x, cos_t, sin_t, t, heads, d, inverse);                                                \
    }

DEFINE_FOR_ALL_TYPES(ROPE_KERNELS)
