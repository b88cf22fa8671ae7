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
//
// Two passes over a row (the three-pass kernel before it, max / sum / write, took 143 of the fused loss's 745 ms at
// 128K on the H200: each 513 KB FP32 row read three times by scalar loads; this one 51 ms with one 16-byte load a
// step, 42 ms with four). Pass one keeps each
// thread's running max m_t and S_t = Σ exp(z − m_t) (terms in fp32 with expf, S_t in double, rescaled by
// exp(m_old − m_new) in double when m_t grows); the block's max M = max m_t, S = Σ S_t·exp(m_t − M). Pass two writes
// the gradient, on float4 loads where v % 4 = 0. NaN rows stay NaN (ce_max propagates it; a NaN max makes every
// rescale NaN); −inf logits add nothing (a thread adds no term while its running max is −inf), and a row of only
// −inf gives NaN (log 0 − (−inf)).
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

template <typename T> struct CeStore4;
template <> struct CeStore4<float> {
    static __device__ __forceinline__ void store(float* p, long long q, float a, float b, float c, float d) {
        reinterpret_cast<float4*>(p)[q] = make_float4(a, b, c, d);
    }
};
template <typename T> struct CeStore4 {  // bf16_t, f16_tag: four 16-bit values, element 4q in the low half
    static __device__ __forceinline__ void store(typename Carrier<T>::type* p, long long q, float a, float b, float c,
                                                 float d) {
        typename Carrier<T>::type h[4];
        Storage<T>::store(h, 0, a);
        Storage<T>::store(h, 1, b);
        Storage<T>::store(h, 2, c);
        Storage<T>::store(h, 3, d);
        reinterpret_cast<uint2*>(p)[q] = make_uint2(h[0] | ((unsigned) h[1] << 16), h[2] | ((unsigned) h[3] << 16));
    }
};

__device__ __forceinline__ float ce_quad_max(const float4& x) { return ce_max(ce_max(x.x, x.y), ce_max(x.z, x.w)); }

// Σ exp(x − m) over a quad, each term from expf in fp32, the sum in double
__device__ __forceinline__ double ce_quad_exp_sum(const float4& x, float m) {
    return ((double) expf(__fsub_rn(x.x, m)) + (double) expf(__fsub_rn(x.y, m)))
           + ((double) expf(__fsub_rn(x.z, m)) + (double) expf(__fsub_rn(x.w, m)));
}

// one logit into a thread's running (m, S); mx: the new running max (ce_max of m and the logits being added)
__device__ __forceinline__ void ce_online_rescale(float& m, double& s, float mx) {
    if (mx != m) {  // also when mx is NaN (NaN != NaN): S becomes NaN and stays so
        s = s == 0.0 ? 0.0 : s * exp((double) m - (double) mx);
        m = mx;
    }
}

template <typename T>
__device__ void cross_entropy_rows_impl(typename Carrier<T>::type* dlogits, float* loss_rows, const float* logits,
                                        const int* labels, int rows, int v, float grad_scale) {
    typedef typename Carrier<T>::type C;
    const float neg_inf = -__int_as_float(0x7f800000);
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* z = logits + (long long) r * v;
        C* dz = dlogits + (long long) r * v;
        const int label = labels[r];
        if (label < 0 || label >= v) {  // IGNORE_INDEX (−100): no loss, no gradient
            for (int j = threadIdx.x; j < v; j += blockDim.x) Storage<T>::store(dz, j, 0.f);
            if (threadIdx.x == 0) loss_rows[r] = 0.f;
            continue;
        }
        const bool vector = (v & 3) == 0 && aligned16(z) && ((unsigned long long) dz & (4 * sizeof(C) - 1)) == 0;
        const int quads = vector ? v / 4 : 0;
        float m = neg_inf;
        double s = 0.0;
        const float4* z4 = reinterpret_cast<const float4*>(z);
        const int b = blockDim.x;
        int q = threadIdx.x;
        // four quads a step, loaded before any is used: four 16-byte loads in flight per thread (one a step left the
        // HBM under-fed: about 1,000 rows of 256 threads in flight, one load each)
        for (; q + 3 * b < quads; q += 4 * b) {
            const float4 x0 = z4[q], x1 = z4[q + b], x2 = z4[q + 2 * b], x3 = z4[q + 3 * b];
            ce_online_rescale(m, s, ce_max(ce_max(m, ce_quad_max(x0)), ce_max(ce_max(ce_quad_max(x1), ce_quad_max(x2)),
                                                                          ce_quad_max(x3))));
            if (m != neg_inf) {  // while all seen are −inf, exp(−inf − (−inf)) would be NaN
                s += (ce_quad_exp_sum(x0, m) + ce_quad_exp_sum(x1, m)) + (ce_quad_exp_sum(x2, m) + ce_quad_exp_sum(x3, m));
            }
        }
        for (; q < quads; q += b) {
            const float4 x = z4[q];
            ce_online_rescale(m, s, ce_max(m, ce_quad_max(x)));
            if (m != neg_inf) s += ce_quad_exp_sum(x, m);
        }
        for (int j = 4 * quads + threadIdx.x; j < v; j += blockDim.x) {
            ce_online_rescale(m, s, ce_max(m, z[j]));
            if (m != neg_inf) s += (double) expf(__fsub_rn(z[j], m));
        }
        const float mb = ce_block_max(m);
        const double sum_exp = block_sum(s == 0.0 ? 0.0 : s * exp((double) m - (double) mb));
        if (threadIdx.x == 0) loss_rows[r] = (float) ((double) mb + log(sum_exp) - (double) z[label]);
        const double norm = (double) grad_scale / sum_exp;
        const auto grad = [&](float zj, int j) {
            float g = (float) ((double) expf(__fsub_rn(zj, mb)) * norm);
            return j == label ? __fsub_rn(g, grad_scale) : g;
        };
        const auto store = [&](const float4& x, int k) {
            CeStore4<T>::store(dz, k, grad(x.x, 4 * k), grad(x.y, 4 * k + 1), grad(x.z, 4 * k + 2), grad(x.w, 4 * k + 3));
        };
        q = threadIdx.x;
        for (; q + 3 * b < quads; q += 4 * b) {
            const float4 x0 = z4[q], x1 = z4[q + b], x2 = z4[q + 2 * b], x3 = z4[q + 3 * b];
            store(x0, q);
            store(x1, q + b);
            store(x2, q + 2 * b);
            store(x3, q + 3 * b);
        }
        for (; q < quads; q += b) store(z4[q], q);
        for (int j = 4 * quads + threadIdx.x; j < v; j += blockDim.x) Storage<T>::store(dz, j, grad(z[j], j));
    }
}

#define CROSS_ENTROPY_KERNELS(S, T, C)                                                                              \
    extern "C" __global__ void cross_entropy_rows_##S(C* dlogits, float* loss_rows, const float* logits,          \
                                                      const int* labels, int rows, int v, float grad_scale) {      \
        cross_entropy_rows_impl<T>(dlogits, loss_rows, logits, labels, rows, v, grad_scale);                       \
    }

DEFINE_FOR_ALL_TYPES(CROSS_ENTROPY_KERNELS)
