// Shared by flash_attention.cu and flash_attention_sm90.cu: which document a token lies in and the backward's last
// write of the key gradients; and, for the mma.sync backward, the query rows a step stages in shared memory beside its
// Q and dO tiles (the sm_90a backward's producer warpgroup stages its own). Pasted in place of its #include by
// the kernel loader (NvrtcCompiler), as common.cuh is.
#pragma once

namespace fa_rows {

// Index of the document holding token i: the largest k < num_seqs with cu[k] <= i (empty documents skipped).
__device__ __forceinline__ int doc_of(const int* cu, int num_seqs, int i) {
    int lo = 0, hi = num_seqs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (cu[mid] <= i) lo = mid; else hi = mid - 1;
    }
    return lo;
}

// The end of a backward block: dk += dK and dv += dV / scale (dV was accumulated from scale·P) for this thread's two
// keys key0 and key0 + 8 over D columns, element 4n + 2·hf + e of its accumulators being column 8n + tc + e of key hf
// (the m16n8 accumulator layout, repeated); each element is read, summed in fp32 and rounded once.
template <typename Tag, int D>
__device__ __forceinline__ void add_key_gradients(unsigned short* dk, unsigned short* dv, const float* dka,
                                                  const float* dva, int key0, int tc, int t, int hkv, int g,
                                                  float scale) {
    const float inv_scale = 1.f / scale;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int key = key0 + 8 * hf;
            if (key < t) {
                const long long o = ((long long) key * hkv + g) * D + n * 8 + tc;
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    Storage<Tag>::store(dk, o + e, Storage<Tag>::load(dk, o + e) + dka[4 * n + 2 * hf + e]);
                    Storage<Tag>::store(dv, o + e, Storage<Tag>::load(dv, o + e) + dva[4 * n + 2 * hf + e] * inv_scale);
                }
            }
        }
    }
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800  // cp.async

// The 64 query rows of a backward step, double-buffered (b = 0, 1) in shared memory: lse and delta come by 4-byte
// cp.async (zero past t) with the step's Q/dO tiles; the thread that copied row c later turns its lse into the
// log2 domain less log2(scale) (so the exponentials give scale·P) and finds the row's document start, walking forward
// from the previous step's document (rows only grow within a head), so no binary search and no global load sits
// between two steps. Threads 0..63 do the work; the caller orders it with its barriers.
struct StagedRows {
    float* lse;    // [2][64]
    float* delta;  // [2][64]
    int* ds;       // [2][64]: each row's document start, INT_MAX past t
    int* doc;      // [64]: each row's document, carried from step to step

    // rows r0.. of head h of lse and delta (h, t) into buffer b
    __device__ __forceinline__ void copy(const float* lse_g, const float* delta_g, int h, int r0, int b, int t) const {
        if (threadIdx.x < 64) {
            const int i = r0 + threadIdx.x;
            const bool ok = i < t;
            const long long o = (long long) h * t + (ok ? i : 0);
            copy4(lse + b * 64 + threadIdx.x, lse_g + o, ok);
            copy4(delta + b * 64 + threadIdx.x, delta_g + o, ok);
        }
    }

    // after this thread's copies of buffer b (rows r0..) have landed; first: the key block's first row, where each
    // head's steps start over
    __device__ __forceinline__ void finish(int r0, int b, int first, const int* cu, int num_seqs, int t,
                                           float log2_scale) const {
        if (threadIdx.x < 64) {
            const int c = threadIdx.x, i = r0 + c;
            lse[b * 64 + c] = fmaf(lse[b * 64 + c], 1.4426950408889634f, -log2_scale);
            if (i < t) {
                int d;
                if (first == r0) {  // a new head starts over
                    d = doc_of(cu, num_seqs, i);
                } else {
                    d = doc[c];
                    while (d + 1 < num_seqs && __ldg(cu + d + 1) <= i) d++;
                }
                doc[c] = d;
                ds[b * 64 + c] = __ldg(cu + d);
            } else {
                ds[b * 64 + c] = 0x7fffffff;
            }
        }
    }

  private:
    static __device__ __forceinline__ void copy4(float* dst, const float* src, bool pred) {
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" :: "r"((unsigned) __cvta_generic_to_shared(dst)),
                     "l"(src), "r"(pred ? 4 : 0));
    }
};

#endif

}  // namespace fa_rows
