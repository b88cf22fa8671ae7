// Token embedding for the CUDA device: the contract of dev.longtune.ops.Embedding.
//   forward:  out[t] = table[ids[t]]                        (a copy: bit for bit)
//   backward: dtable[id] += dout[t] for every token t with ids[t] == id
// The backward is deterministic without atomics: the host sorts the token positions by id, STABLY (so the
// positions of one id stay in increasing token order) into `order`, with seg_start (u + 1 offsets into order)
// and unique_ids (the u distinct ids). Each element of dtable[id] is loaded once, the segment's dout rows are
// added to it in fp32 in token order, and it is rounded once: exactly Embedding.backward's serial loop.
// Launch: blockDim.x = 256, no dynamic shared memory.
//   embedding_forward:  grid = ceil(t·c / 256) (any grid: grid-stride)
//   embedding_backward: grid = u (one block per distinct id; any grid: grid-stride over segments), threads over c
//   rows_scatter:       as embedding_forward
// ids are trusted to lie in [0, V): the host checks them (Embedding.checkId) before launching.
#include "common.cuh"

// ids (t), table (V, c) -> out (t, c)
template <typename T>
__device__ void embedding_forward_impl(typename Carrier<T>::type* out, const int* ids,
                                       const typename Carrier<T>::type* table, int t, int c) {
    long long total = (long long) t * c;
    for (long long idx = (long long) blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long) gridDim.x * blockDim.x) {
        long long tok = idx / c;
        long long j = idx - tok * c;
        out[idx] = table[(long long) ids[tok] * c + j]; // same storage type: a raw copy
    }
}

// The forward's inverse, for distinct ids: src (t, c) -> out[ids[k]] = src[k] (a raw copy). With the forward as a
// gather it lets the fused loss (CudaDevice.linearCrossEntropy) work on the rows of the tokens it trains on only.
template <typename T>
__device__ void rows_scatter_impl(typename Carrier<T>::type* out, const int* ids, const typename Carrier<T>::type* src,
                                  int t, int c) {
    long long total = (long long) t * c;
    for (long long idx = (long long) blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long) gridDim.x * blockDim.x) {
        long long tok = idx / c;
        long long j = idx - tok * c;
        out[(long long) ids[tok] * c + j] = src[idx];
    }
}

// dout (t, c), order (t) token positions sorted by id, seg_start (u + 1), unique_ids (u) -> dtable (V, c) +=
template <typename T>
__device__ void embedding_backward_impl(typename Carrier<T>::type* dtable, const typename Carrier<T>::type* dout,
                                        const int* order, const int* seg_start, const int* unique_ids, int u, int c) {
    for (int s = blockIdx.x; s < u; s += gridDim.x) {
        int from = seg_start[s], to = seg_start[s + 1];
        long long row = (long long) unique_ids[s] * c;
        for (int j = threadIdx.x; j < c; j += blockDim.x) {
            float acc = Storage<T>::load(dtable, row + j);
            for (int k = from; k < to; k++) acc = __fadd_rn(acc, Storage<T>::load(dout, (long long) order[k] * c + j));
            Storage<T>::store(dtable, row + j, acc);
        }
    }
}

#define EMBEDDING_KERNELS(S, T, C)                                                                                  \
    extern "C" __global__ void embedding_forward_##S(C* out, const int* ids, const C* table, int t, int c) {       \
        embedding_forward_impl<T>(out, ids, table, t, c);                                                          \
    }                                                                                                               \
    extern "C" __global__ void embedding_backward_##S(C* dtable, const C* dout, const int* order,                  \
                                                      const int* seg_start, const int* unique_ids, int u, int c) { \
        embedding_backward_impl<T>(dtable, dout, order, seg_start, unique_ids, u, c);                              \
    }                                                                                                               \
    extern "C" __global__ void rows_scatter_##S(C* out, const int* ids, const C* src, int t, int c) {              \
        rows_scatter_impl<T>(out, ids, src, t, c);                                                                 \
    }

DEFINE_FOR_ALL_TYPES(EMBEDDING_KERNELS)
