// Instruction-set levels for the memory-bound optimizer kernels (adamw.h, sum_squares.h), chosen once when the
// library loads and switchable for tests and benchmarks, and the split of a flat range over OpenMP threads.
// Unlike target_clones (flash_attention.h), each level is a separately written function, so the levels can be
// compared with each other in one process; they do the same IEEE operations in the same order (no FMA), so
// every level gives the same bits.
//   0: baseline x86-64 (SSE2), always there
//   1: AVX2 + F16C (Haswell and later)
//   2: AVX-512F (Skylake-SP and later)
#ifndef LONGTUNE_SIMD_DISPATCH_H
#define LONGTUNE_SIMD_DISPATCH_H

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LONGTUNE_X86_LEVELS 1
#endif

namespace longtune_cpu {

static inline int simd_supported_level() {
#ifdef LONGTUNE_X86_LEVELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) return 1;
#endif
    return 0;
}

// LONGTUNE_CPU_SIMD=sse2|avx2|avx512 caps the level at load (e.g. to measure a variant); never above the CPU's
static inline int simd_initial_level() {
    int level = simd_supported_level();
    const char* cap = std::getenv("LONGTUNE_CPU_SIMD");
    if (cap != nullptr) {
        int wanted = std::strcmp(cap, "sse2") == 0 ? 0 : std::strcmp(cap, "avx2") == 0 ? 1 : 2;
        level = std::min(level, wanted);
    }
    return level;
}

static inline int& simd_level_ref() {
    static int level = simd_initial_level();
    return level;
}

// Calls body(from, to) on contiguous pieces of [0, n), one per OpenMP thread, cut at multiples of 16 elements
// (a 64-byte line of floats, so no two threads write one cache line). Below `serial_below` it runs in the
// calling thread: a parallel region costs microseconds, more than a norm weight's update.
template <class Body>
static inline void parallel_range(int64_t n, int64_t serial_below, Body body) {
    if (n <= 0) return;
#ifdef _OPENMP
    if (n >= serial_below && omp_get_max_threads() > 1) {
        #pragma omp parallel
        {
            const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
            const int64_t lines = (n + 15) / 16;
            const int64_t from = std::min(n, lines * id / threads * 16);
            const int64_t to = std::min(n, lines * (id + 1) / threads * 16);
            if (from < to) body(from, to);
        }
        return;
    }
#endif
    body((int64_t) 0, n);
}

}  // namespace longtune_cpu

// the level in use: 0 baseline (SSE2), 1 AVX2+F16C, 2 AVX-512F
inline int longtune_cpu_simd_level() { return longtune_cpu::simd_level_ref(); }

// the highest level this CPU runs
inline int longtune_cpu_simd_supported() { return longtune_cpu::simd_supported_level(); }

// sets the level for every later call (process-wide; tests and benchmarks), capped at the CPU's; returns it
inline int longtune_cpu_set_simd_level(int level) {
    int applied = std::max(0, std::min(level, longtune_cpu::simd_supported_level()));
    longtune_cpu::simd_level_ref() = applied;
    return applied;
}

#endif
