// Umbrella header of the fused CPU kernels (kernels/cpu), included by the JavaCPP binding
// dev.longtune.ops.nativecpu.NativeCpuKernels. Kernels are header-only inline functions so that JavaCPP
// compiles them into the one JNI library (libjniNativeCpuKernels.so) with -fopenmp -O3.
#ifndef LONGTUNE_CPU_H
#define LONGTUNE_CPU_H
#include "simd_dispatch.h"
#include "rms_norm.h"
#include "swiglu.h"
#include "adamw.h"
#include "sum_squares.h"
#include "rope.h"
#include "flash_attention.h"
#include "embedding.h"
#include "cross_entropy.h"
#include "memory_bandwidth.h"
#ifdef _OPENMP
#include <omp.h>
inline int longtune_cpu_max_threads() { return omp_get_max_threads(); }
// for the calling thread only (an OpenMP ICV of its data environment): lets tests vary the thread count
inline void longtune_cpu_set_threads(int n) { omp_set_num_threads(n); }
#else
inline int longtune_cpu_max_threads() { return 1; }
inline void longtune_cpu_set_threads(int) { }
#endif
#endif
