// Benchmark support for the CPU optimizer kernels (dev.longtune.bench.CpuAdamWBench): the host's memory
// bandwidth measured the way STREAM's triad does, and a parallel fill that also places the pages (first
// touch by the threads that later use them, with the same split as adamw.h).
// Triad: a[i] = b[i] + s·c[i] over doubles, 24 bytes counted per element as STREAM counts them. The stores are
// non-temporal (_mm_stream_pd, SSE2), as STREAM's reference builds emit them: an ordinary store would first
// read the line it writes (write-allocate), moving 32 bytes for the 24 counted and under-stating the bandwidth.
#ifndef LONGTUNE_MEMORY_BANDWIDTH_H
#define LONGTUNE_MEMORY_BANDWIDTH_H

#include <cstdint>
#include "simd_dispatch.h"
#ifdef LONGTUNE_X86_LEVELS
#include <emmintrin.h>
#endif

// a, b, c (n) each; a = b + s·c. Returns nothing: the caller times it.
inline void longtune_stream_triad(double* a, const double* b, const double* c, int64_t n, double s) {
    longtune_cpu::parallel_range(n, 1 << 15, [&](int64_t from, int64_t to) {
        int64_t i = from;
#ifdef LONGTUNE_X86_LEVELS
        for (; i < to && ((uintptr_t) (a + i) & 15) != 0; i++) a[i] = b[i] + s * c[i];
        const __m128d vs = _mm_set1_pd(s);
        for (; i + 2 <= to; i += 2) {
            _mm_stream_pd(a + i, _mm_add_pd(_mm_loadu_pd(b + i), _mm_mul_pd(vs, _mm_loadu_pd(c + i))));
        }
        _mm_sfence();
#endif
        for (; i < to; i++) a[i] = b[i] + s * c[i];
    });
}

// x[i] = lo + (hi - lo)·u(seed, i), u uniform in [0, 1) from a counter hash (splitmix64): any thread count
// gives the same values
inline void longtune_fill_uniform(float* x, int64_t n, int64_t seed, float lo, float hi) {
    longtune_cpu::parallel_range(n, 1 << 15, [&](int64_t from, int64_t to) {
        for (int64_t i = from; i < to; i++) {
            uint64_t z = (uint64_t) seed * 0x9e3779b97f4a7c15ull + (uint64_t) i * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            x[i] = lo + (hi - lo) * (float) ((double) (z >> 40) * 0x1p-24);
        }
    });
}

// zeroes `bytes` bytes in parallel (first touch of the triad's arrays and of 16-bit buffers)
inline void longtune_fill_zero(void* x, int64_t bytes) {
    longtune_cpu::parallel_range(bytes, 1 << 20, [&](int64_t from, int64_t to) {
        std::memset((char*) x + from, 0, (size_t) (to - from));
    });
}

#endif
