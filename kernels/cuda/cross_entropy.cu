// The per-row part of dev.longtune.ops.FusedLinearCrossEntropy (lossAndLogitGradient) for the CUDA device: the
// caller computes a chunk of fp32 logits with cuBLAS, this kernel turns each row into its loss and its logit
// gradient, and the caller pushes the gradient through the LM head with two more GEMMs.
//   m = max_j z_j,  S = Σ_j e_j with e_j = exp(z_j − m) (S in double),  loss = m + log S − z[label]   (double)
//   dz_j = (float) (e_j · (grad_scale / S)), then dz[label] −= grad_scale (fp32), stored rounded to C
// grad_scale carries 1 / (valid tokens) and the loss scale. A row whose label is −100 (IGNORE_INDEX), or any
// label outside [0, v) (the host rejects those before launching), gets loss 0 and an all-zero gradient row.
// e_j is computed in fp32 with expf (full precision); the Java op evaluates exp in double and rounds e_j to float
// before using it, so e_j may differ from Java's in the last bit or two. A NaN logit makes the row's loss and
// gradient NaN, as in Java (Math.max propagates NaN).
// Launch: blockDim.x = 256 (any multiple of 32 up to 1024), grid = rows (any grid is correct: rows are
// grid-strided), no dynamic shared memory. v may be any size (odd too); rows·v may exceed 2^31.
#include "common.cuh"

__device__ __forceinline__ float ce_max(float a, float b) {
    if (a != a) return a;
    if (b != b) return b;
    return b > a ? b : a;
}

__device__ __forceinline__ float ce_block_max(float v) {
    __shared__ float partial[32];
    for (int o = 16; o > 0; o >>= 1) v = ce_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? partial[lane] : -__int_as_float(0x7f800000);
    for (int o = 16; o > 0; o >>= 1) v = ce_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// logits (rows, v) fp32, labels (rows) -> dlogits (rows, v) = (overwritten), loss_rows (rows) =
template <typename T>
__device__ void cross_entropy_rows_impl(typename Carrier<T>::type* dlogits, float* loss_rows, const float* logits,
                                        const int* labels, int rows, int v, float grad_scale) {
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        long long base = (long long) r * v;
        const float* z = logits + base;
        int label = labels[r];
        if (label < 0 || label >= v) { // IGNORE_INDEX (−100): no loss, no gradient
            for (int j = threadIdx.x; j < v; j += blockDim.x) Storage<T>::store(dlogits, base + j, 0.f);
            if (threadIdx.x == 0) loss_rows[r] = 0.f;
            continue;
        }
        float m = -__int_as_float(0x7f800000);
        for (int j = threadIdx.x; j < v; j += blockDim.x) m = ce_max(m, z[j]);
        m = ce_block_max(m);
        double sum_exp = 0.0;
        for (int j = threadIdx.x; j < v; j += blockDim.x) sum_exp += (double) expf(__fsub_rn(z[j], m));
        sum_exp = block_sum(sum_exp);
        if (threadIdx.x == 0) loss_rows[r] = (float) ((double) m + log(sum_exp) - (double) z[label]);
        double norm = (double) grad_scale / sum_exp;
        for (int j = threadIdx.x; j < v; j += blockDim.x) {
            float e = expf(__fsub_rn(z[j], m));
            float g = (float) ((double) e * norm);
            if (j == label) g = __fsub_rn(g, grad_scale);
            Storage<T>::store(dlogits, base + j, g);
        }
    }
}

#define CROSS_ENTROPY_KERNELS(S, T, C)                                                                              \
    extern "C" __global__ void cross_entropy_rows_##S(C* dlogits, float* loss_rows, const float* logits,          \
                                                      const int* labels, int rows, int v, float grad_scale) {      \
        cross_entropy_rows_impl<T>(dlogits, loss_rows, logits, labels, rows, v, grad_scale);                       \
    }

DEFINE_FOR_ALL_TYPES(CROSS_ENTROPY_KERNELS)
