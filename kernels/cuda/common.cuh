// Shared by every kernel in kernels/cuda. CudaKernels pastes this file in place of
// `#include "common.cuh"` before NVRTC sees a source, so kernels need no include path of ours.
//
// Storage types: tensors hold fp32 (float), bf16 or fp16; the 16-bit types are carried as raw bits
// (bf16_t / f16_t) and converted with exact round-to-nearest-even, so every kernel computes in fp32 and
// rounds its output once, as the CPU device does (DType.roundInPlace). Only Volta-era PTX is used here
// (cvt.f32.f16 / cvt.rn.f16.f32 exist on sm_70; bf16 is converted with integer ops), so this header
// compiles for every architecture the engine supports.
#pragma once

typedef unsigned short bf16_t;
typedef unsigned short f16_t;

__device__ __forceinline__ float to_float(float x) { return x; }

__device__ __forceinline__ float bf16_to_float(bf16_t x) { return __uint_as_float(((unsigned int) x) << 16); }

__device__ __forceinline__ bf16_t float_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (bf16_t) ((u >> 16) | 0x40u); // NaN stays a (quiet) NaN
    }
    u += 0x7fffu + ((u >> 16) & 1u); // round to nearest, ties to even
    return (bf16_t) (u >> 16);
}

__device__ __forceinline__ float f16_to_float(f16_t x) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x));
    return f;
}

__device__ __forceinline__ f16_t float_to_f16(float f) {
    f16_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// load<T>(p, i) -> float and store<T>(p, i, v): the one place kernels touch storage.
template <typename T> struct Storage;

template <> struct Storage<float> {
    static __device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
    static __device__ __forceinline__ void store(float* p, long long i, float v) { p[i] = v; }
};

template <> struct Storage<bf16_t> {
    static __device__ __forceinline__ float load(const bf16_t* p, long long i) { return bf16_to_float(p[i]); }
    static __device__ __forceinline__ void store(bf16_t* p, long long i, float v) { p[i] = float_to_bf16(v); }
};

// fp16 shares bf16's carrier type, so it gets its own tag type for templates.
struct f16_tag {};

template <typename T> struct Carrier { typedef T type; };
template <> struct Carrier<f16_tag> { typedef f16_t type; };

template <> struct Storage<f16_tag> {
    static __device__ __forceinline__ float load(const f16_t* p, long long i) { return f16_to_float(p[i]); }
    static __device__ __forceinline__ void store(f16_t* p, long long i, float v) { p[i] = float_to_f16(v); }
};

// 16-byte packs: Pack<T>::N consecutive elements (4 fp32 or 8 16-bit) moved in one load or store, converted
// element by element exactly as Storage<T> does, so a vectorised kernel rounds like its scalar form.
// Callers check aligned16 for every pointer (a view may start mid-pack) and fall back to Storage<T> otherwise.
__device__ __forceinline__ bool aligned16(const void* p) { return ((unsigned long long) p & 15ull) == 0; }

template <typename T> struct Pack;
template <> struct Pack<float> {
    static constexpr int N = 4;
    typedef float4 Raw;
    static __device__ __forceinline__ Raw fetch(const float* p, long long pack) {
        return reinterpret_cast<const float4*>(p)[pack];
    }
    static __device__ __forceinline__ void unpack(const Raw& r, float* v) { v[0] = r.x; v[1] = r.y; v[2] = r.z; v[3] = r.w; }
    static __device__ __forceinline__ void load(const float* p, long long pack, float* v) { unpack(fetch(p, pack), v); }
    static __device__ __forceinline__ void store(float* p, long long pack, const float* v) {
        reinterpret_cast<float4*>(p)[pack] = make_float4(v[0], v[1], v[2], v[3]);
    }
};
// the 16-bit types' conversions, as Storage<T> does them
template <typename T> struct Bits16;
template <> struct Bits16<bf16_t> {
    static __device__ __forceinline__ float to(unsigned short x) { return bf16_to_float(x); }
    static __device__ __forceinline__ unsigned short from(float v) { return float_to_bf16(v); }
};
template <> struct Bits16<f16_tag> {
    static __device__ __forceinline__ float to(unsigned short x) { return f16_to_float(x); }
    static __device__ __forceinline__ unsigned short from(float v) { return float_to_f16(v); }
};
template <typename T> struct Pack {
    static constexpr int N = 8;
    typedef uint4 Raw;
    static __device__ __forceinline__ Raw fetch(const unsigned short* p, long long pack) {
        return reinterpret_cast<const uint4*>(p)[pack];
    }
    static __device__ __forceinline__ void unpack(const Raw& r, float* v) {
        unsigned int w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            v[2 * k] = Bits16<T>::to((unsigned short) (w[k] & 0xffffu));
            v[2 * k + 1] = Bits16<T>::to((unsigned short) (w[k] >> 16));
        }
    }
    static __device__ __forceinline__ void load(const unsigned short* p, long long pack, float* v) { unpack(fetch(p, pack), v); }
    static __device__ __forceinline__ void store(unsigned short* p, long long pack, const float* v) {
        unsigned int w[4];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            w[k] = (unsigned int) Bits16<T>::from(v[2 * k]) | ((unsigned int) Bits16<T>::from(v[2 * k + 1]) << 16);
        }
        reinterpret_cast<uint4*>(p)[pack] = make_uint4(w[0], w[1], w[2], w[3]);
    }
};

// Instantiation helper: DEFINE_FOR_ALL_TYPES(MACRO) expands MACRO(suffix, Tag, Carrier) for f32, bf16, f16,
// producing extern "C" entry points such as rms_norm_forward_bf16 that CudaKernels looks up by name.
#define DEFINE_FOR_ALL_TYPES(M) M(f32, float, float) M(bf16, bf16_t, bf16_t) M(f16, f16_tag, f16_t)

// Block-wide sum for blockDim.x a multiple of 32 (at most 1024), in a fixed order; every thread gets the
// result. V is float, or double for sums that must not lose small terms (cross-entropy's Σexp, sum of squares).
template <typename V>
__device__ __forceinline__ V block_sum(V v) {
    __shared__ V partial[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? partial[lane] : V(0);
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
