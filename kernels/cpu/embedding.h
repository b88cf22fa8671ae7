// Token embedding for the CPU device (longtune), compiled into the toolkit jar through JavaCPP.
// Same contract as dev.longtune.ops.Embedding (fp32, row-major): ids (T) in [0, V), table (V, C), out (T, C)
//   forward:  out[t] = table[ids[t]]                (overwrites)
//   backward: dtable[ids[t]] += dout[t]             (adds)
// Ids are checked by the caller (NativeCpuOps). Backward: a repeated id adds several rows into one table row,
// so the channels are cut into blocks that run in parallel and, inside a block, tokens are added in order
// t = 0 .. T-1: every element receives its additions in token order whatever the thread count, bit for bit
// the serial loop (and the Java op).
#ifndef LONGTUNE_EMBEDDING_H
#define LONGTUNE_EMBEDDING_H

#include <cstdint>
#include <cstring>

namespace longtune_cpu {
static const int EMBEDDING_CHANNEL_BLOCK = 256;
}

inline void longtune_embedding_forward(float* out, const int* ids, const float* table, int T, int C) {
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        std::memcpy(out + (int64_t) t * C, table + (int64_t) ids[t] * C, sizeof(float) * (size_t) C);
    }
}

inline void longtune_embedding_backward(float* dtable, const float* dout, const int* ids, int T, int C) {
    const int block = longtune_cpu::EMBEDDING_CHANNEL_BLOCK;
    const int blocks = (C + block - 1) / block;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < blocks; b++) {
        const int from = b * block;
        const int to = from + block < C ? from + block : C;
        for (int t = 0; t < T; t++) {
            float* dst = dtable + (int64_t) ids[t] * C;
            const float* src = dout + (int64_t) t * C;
            for (int c = from; c < to; c++) dst[c] += src[c];
        }
    }
}

#endif
