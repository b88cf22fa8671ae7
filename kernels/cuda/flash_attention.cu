// FlashAttention-2 forward and backward (causal, GQA, packed variable-length documents), fp32 accumulation.
// ABI, launch configuration and design notes: flash_attention.md beside this file.
//
// Paths (tensor-core kernels pick one at compile time; tiles, block sizes and shared memory differ per path):
//   * sm_80+ (default when __CUDA_ARCH__ >= 800): mma.sync m16n8k16 + ldmatrix + cp.async, S/P/O in registers.
//   * Volta path (__CUDA_ARCH__ < 800, or any arch with -DFA_FORCE_VOLTA_PATH): nvcuda::wmma m16n16k16 with fp32
//     accumulators, only instructions that exist on sm_70 (wmma.load / wmma.mma / wmma.store on f16); the bf16
//     entry points compile their bodies only for sm_80+ and trap below that (the engine uses fp16 on V100).
//   * fp32 path (suffix f32): plain tiled fp32 kernels on CUDA cores, for the engine's fp32 parity tests.
//
// Masking is per element: key j is visible to query i iff doc_start(i) <= j <= i, so tiles may straddle
// document boundaries. Softmax runs in the log2 domain (scores · scale · log2 e, exp2f); lse is stored in
// natural log: lse = m·ln 2 + ln l.
#include "common.cuh"
#include "flash_attention_rows.cuh"
#include <mma.h>

namespace fa {

using namespace nvcuda;

#define FA_LOG2E 1.4426950408889634f
#define FA_LN2 0.6931471805599453f
#define FA_BIG 0x7fffffff
#define FA_INF __int_as_float(0x7f800000)

using fa_rows::doc_of;

// ---------------------------------------------------------------------------------------------------------------
// Tensor-core (WMMA) path
// ---------------------------------------------------------------------------------------------------------------

template <typename Tag> struct WT;
template <> struct WT<f16_tag> {
    typedef __half type;
    static __device__ __forceinline__ unsigned short cvt(float f) { return float_to_f16(f); }
};
template <> struct WT<bf16_t> {
    typedef __nv_bfloat16 type;
    static __device__ __forceinline__ unsigned short cvt(float f) { return float_to_bf16(f); }
};

// Tile geometry shared by forward and backward: 64 query rows × 64 keys, 4 warps of 16 rows each.
template <int D> struct TC {
    static constexpr int BR = 64, BC = 64, WARPS = 4, THREADS = 128;
    static constexpr int LDH = D + 8;       // 16-bit elements per row of a Q/K/V/dO tile in shared memory
    static constexpr int LDS = BC + 4;      // floats per row of a score tile
    static constexpr int LDP = 2 * LDS;     // 16-bit elements per row of P / dS, written in place over scores
    static constexpr int TILE_BYTES = 64 * LDH * 2;
    static constexpr int SCORE_BYTES = 64 * LDS * 4;
    // forward: K | V | S (Q staged in K's place before the loop) | alpha
    static constexpr int FWD_SMEM = 2 * TILE_BYTES + SCORE_BYTES + WARPS * 16 * 4;
    // backward: K | V | Q | dO | S | scratch (4 × 16×16 fp32) | lse, delta, doc start (64 each)
    static constexpr int BWD_SMEM = 4 * TILE_BYTES + SCORE_BYTES + WARPS * 256 * 4 + 3 * 64 * 4;
};

// rows × D tile of x (T, heads, D) starting at token r0, head h, into shared memory (row stride LDH); zeros past t.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(unsigned short* dst, const unsigned short* src, int r0, int t, int heads,
                                          int h) {
    constexpr int VPR = D / 8;
    constexpr int LDH = D + 8;
#pragma unroll
    for (int idx = threadIdx.x; idx < ROWS * VPR; idx += THREADS) {
        int r = idx / VPR, c = (idx % VPR) * 8;
        int row = r0 + r;
        uint4 val = make_uint4(0u, 0u, 0u, 0u);
        if (row < t) val = *reinterpret_cast<const uint4*>(src + ((long long) row * heads + h) * D + c);
        *reinterpret_cast<uint4*>(dst + r * LDH + c) = val;
    }
}

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> AccFrag;

// Row (0..15) of each element of an accumulator fragment, read back from a matrix whose entry (r, c) is r.
__device__ __forceinline__ void accumulator_rows(int (&rows)[AccFrag::num_elements], float* scratch, int ld) {
    int lane = threadIdx.x & 31;
    for (int e = lane; e < 256; e += 32) scratch[(e >> 4) * ld + (e & 15)] = (float) (e >> 4);
    __syncwarp();
    AccFrag f;
    wmma::load_matrix_sync(f, scratch, ld, wmma::mem_row_major);
#pragma unroll
    for (int e = 0; e < AccFrag::num_elements; e++) rows[e] = (int) f.x[e];
    __syncwarp();
}

template <typename Tag, int D>
__device__ __forceinline__ void forward_tc(unsigned short* out, float* lse, const unsigned short* q,
                                           const unsigned short* k, const unsigned short* v, const int* cu,
                                           int num_seqs, int t, int hq, int hkv, float scale) {
    typedef TC<D> G;
    typedef typename WT<Tag>::type W;
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned short* Ks = reinterpret_cast<unsigned short*>(smem);
    unsigned short* Vs = reinterpret_cast<unsigned short*>(smem + G::TILE_BYTES);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float* Sw = reinterpret_cast<float*>(smem + 2 * G::TILE_BYTES) + warp * 16 * G::LDS;
    float* alpha_s = reinterpret_cast<float*>(smem + 2 * G::TILE_BYTES + G::SCORE_BYTES) + warp * 16;
    unsigned short* Pw = reinterpret_cast<unsigned short*>(Sw);

    const int i0 = blockIdx.x * G::BR, h = blockIdx.y, g = h / (hq / hkv);
    const int i_last = min(i0 + G::BR, t) - 1;
    const int j_begin = cu[doc_of(cu, num_seqs, i0)];

    load_tile<D, 64, 128>(Ks, q, i0, t, hq, h);
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> qf[D / 16];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wmma::load_matrix_sync(qf[kk], reinterpret_cast<const W*>(Ks + warp * 16 * G::LDH + kk * 16), G::LDH);
    int rows[AccFrag::num_elements];
    accumulator_rows(rows, Sw, G::LDS);

    const int r = lane >> 1, half = lane & 1;
    const int i = i0 + warp * 16 + r;
    const int ds = i < t ? cu[doc_of(cu, num_seqs, i)] : FA_BIG;
    const float sl2 = scale * FA_LOG2E;
    float m = -FA_INF, l = 0.f;
    AccFrag of[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; n++) wmma::fill_fragment(of[n], 0.f);

    for (int j0 = j_begin; j0 <= i_last; j0 += G::BC) {
        __syncthreads();
        load_tile<D, 64, 128>(Ks, k, j0, t, hkv, g);
        load_tile<D, 64, 128>(Vs, v, j0, t, hkv, g);
        __syncthreads();
        // S = Q Kᵀ for this warp's 16 rows
#pragma unroll
        for (int n = 0; n < G::BC / 16; n++) {
            AccFrag sf;
            wmma::fill_fragment(sf, 0.f);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::col_major> kb;
                wmma::load_matrix_sync(kb, reinterpret_cast<const W*>(Ks + n * 16 * G::LDH + kk * 16), G::LDH);
                wmma::mma_sync(sf, qf[kk], kb, sf);
            }
            wmma::store_matrix_sync(Sw + n * 16, sf, G::LDS, wmma::mem_row_major);
        }
        __syncwarp();
        // online softmax: lane owns row r, columns 4c + 2·half + {0, 1}
        float2 sv[16];
        float mx = m;
#pragma unroll
        for (int c = 0; c < 16; c++) {
            int col = 4 * c + 2 * half;
            float2 s = *reinterpret_cast<const float2*>(Sw + r * G::LDS + col);
            int j = j0 + col;
            s.x = (j >= ds && j <= i) ? s.x * sl2 : -FA_INF;
            s.y = (j + 1 >= ds && j + 1 <= i) ? s.y * sl2 : -FA_INF;
            sv[c] = s;
            mx = fmaxf(mx, fmaxf(s.x, s.y));
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        const float msafe = mx == -FA_INF ? 0.f : mx;
        const float a = exp2f(m - msafe);
        float sum = 0.f;
        __syncwarp();
#pragma unroll
        for (int c = 0; c < 16; c++) {
            float px = exp2f(sv[c].x - msafe), py = exp2f(sv[c].y - msafe);
            sum += px + py;
            unsigned int packed = (unsigned int) WT<Tag>::cvt(px) | ((unsigned int) WT<Tag>::cvt(py) << 16);
            *reinterpret_cast<unsigned int*>(Pw + r * G::LDP + 4 * c + 2 * half) = packed;
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * a + sum;
        m = mx;
        if (half == 0) alpha_s[r] = a;
        __syncwarp();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> pf[G::BC / 16];
#pragma unroll
        for (int kk = 0; kk < G::BC / 16; kk++)
            wmma::load_matrix_sync(pf[kk], reinterpret_cast<const W*>(Pw + kk * 16), G::LDP);
        float al[AccFrag::num_elements];
#pragma unroll
        for (int e = 0; e < AccFrag::num_elements; e++) al[e] = alpha_s[rows[e]];
#pragma unroll
        for (int n = 0; n < D / 16; n++) {
#pragma unroll
            for (int e = 0; e < AccFrag::num_elements; e++) of[n].x[e] *= al[e];
#pragma unroll
            for (int kk = 0; kk < G::BC / 16; kk++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::row_major> vb;
                wmma::load_matrix_sync(vb, reinterpret_cast<const W*>(Vs + kk * 16 * G::LDH + n * 16), G::LDH);
                wmma::mma_sync(of[n], pf[kk], vb, of[n]);
            }
        }
        __syncwarp();
    }
    // normalise and write out
    __syncwarp();
    if (half == 0) {
        alpha_s[r] = l > 0.f ? 1.f / l : 0.f;
        if (i < t) lse[(long long) h * t + i] = m * FA_LN2 + logf(l);
    }
    __syncwarp();
    float inv[AccFrag::num_elements];
#pragma unroll
    for (int e = 0; e < AccFrag::num_elements; e++) inv[e] = alpha_s[rows[e]];
#pragma unroll
    for (int n = 0; n < D / 16; n++) {
#pragma unroll
        for (int e = 0; e < AccFrag::num_elements; e++) of[n].x[e] *= inv[e];
        wmma::store_matrix_sync(Sw, of[n], 16, wmma::mem_row_major);
        __syncwarp();
        if (i < t) {
            const float* src = Sw + r * 16 + half * 8;
            unsigned int w[4];
#pragma unroll
            for (int c = 0; c < 4; c++)
                w[c] = (unsigned int) WT<Tag>::cvt(src[2 * c]) | ((unsigned int) WT<Tag>::cvt(src[2 * c + 1]) << 16);
            *reinterpret_cast<uint4*>(out + ((long long) i * hq + h) * D + n * 16 + half * 8) =
                make_uint4(w[0], w[1], w[2], w[3]);
        }
        __syncwarp();
    }
}

template <typename Tag, int D>
__device__ __forceinline__ void backward_tc(float* dq_accum, unsigned short* dk, unsigned short* dv,
                                            const unsigned short* q, const unsigned short* k,
                                            const unsigned short* v, const unsigned short* dout, const float* lse,
                                            const float* delta, const int* cu, int num_seqs, int t, int hq, int hkv,
                                            float scale) {
    typedef TC<D> G;
    typedef typename WT<Tag>::type W;
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned short* Ks = reinterpret_cast<unsigned short*>(smem);
    unsigned short* Vs = reinterpret_cast<unsigned short*>(smem + G::TILE_BYTES);
    unsigned short* Qs = reinterpret_cast<unsigned short*>(smem + 2 * G::TILE_BYTES);
    unsigned short* dOs = reinterpret_cast<unsigned short*>(smem + 3 * G::TILE_BYTES);
    float* S = reinterpret_cast<float*>(smem + 4 * G::TILE_BYTES);
    unsigned short* Ph = reinterpret_cast<unsigned short*>(S);  // P (columns 0..63) and dS (64..127), ld LDP
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float* Sw = S + warp * 16 * G::LDS;
    unsigned short* Pw = Ph + warp * 16 * G::LDP;
    float* scratch = reinterpret_cast<float*>(smem + 4 * G::TILE_BYTES + G::SCORE_BYTES) + warp * 256;
    float* lse_s = reinterpret_cast<float*>(smem + 4 * G::TILE_BYTES + G::SCORE_BYTES + G::WARPS * 256 * 4);
    float* delta_s = lse_s + 64;
    int* ds_s = reinterpret_cast<int*>(delta_s + 64);

    const int j0 = blockIdx.x * G::BC, g = blockIdx.y, group = hq / hkv;
    const int j_last = min(j0 + G::BC, t) - 1;
    const int i_end = cu[doc_of(cu, num_seqs, j_last) + 1];
    const int r = lane >> 1, half = lane & 1;
    const float sl2 = scale * FA_LOG2E;

    load_tile<D, 64, 128>(Ks, k, j0, t, hkv, g);
    load_tile<D, 64, 128>(Vs, v, j0, t, hkv, g);
    int rows[AccFrag::num_elements];
    accumulator_rows(rows, scratch, 16);
    AccFrag dkf[D / 16], dvf[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; n++) {
        wmma::fill_fragment(dkf[n], 0.f);
        wmma::fill_fragment(dvf[n], 0.f);
    }

    for (int hh = 0; hh < group; hh++) {
        const int h = g * group + hh;
        for (int i0 = j0; i0 < i_end; i0 += G::BR) {
            __syncthreads();
            load_tile<D, 64, 128>(Qs, q, i0, t, hq, h);
            load_tile<D, 64, 128>(dOs, dout, i0, t, hq, h);
            if (threadIdx.x < 64) {
                int i = i0 + threadIdx.x;
                bool ok = i < t;
                lse_s[threadIdx.x] = ok ? lse[(long long) h * t + i] * FA_LOG2E : 0.f;
                delta_s[threadIdx.x] = ok ? delta[(long long) h * t + i] : 0.f;
                ds_s[threadIdx.x] = ok ? cu[doc_of(cu, num_seqs, i)] : FA_BIG;
            }
            __syncthreads();
            // dP = dO Vᵀ (this warp's 16 rows) -> registers
            float2 dpv[16];
#pragma unroll
            for (int n = 0; n < G::BC / 16; n++) {
                AccFrag f;
                wmma::fill_fragment(f, 0.f);
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> a;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::col_major> b;
                    wmma::load_matrix_sync(a, reinterpret_cast<const W*>(dOs + warp * 16 * G::LDH + kk * 16), G::LDH);
                    wmma::load_matrix_sync(b, reinterpret_cast<const W*>(Vs + n * 16 * G::LDH + kk * 16), G::LDH);
                    wmma::mma_sync(f, a, b, f);
                }
                wmma::store_matrix_sync(Sw + n * 16, f, G::LDS, wmma::mem_row_major);
            }
            __syncwarp();
#pragma unroll
            for (int c = 0; c < 16; c++) dpv[c] = *reinterpret_cast<const float2*>(Sw + r * G::LDS + 4 * c + 2 * half);
            __syncwarp();
            // S = Q Kᵀ
#pragma unroll
            for (int n = 0; n < G::BC / 16; n++) {
                AccFrag f;
                wmma::fill_fragment(f, 0.f);
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> a;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::col_major> b;
                    wmma::load_matrix_sync(a, reinterpret_cast<const W*>(Qs + warp * 16 * G::LDH + kk * 16), G::LDH);
                    wmma::load_matrix_sync(b, reinterpret_cast<const W*>(Ks + n * 16 * G::LDH + kk * 16), G::LDH);
                    wmma::mma_sync(f, a, b, f);
                }
                wmma::store_matrix_sync(Sw + n * 16, f, G::LDS, wmma::mem_row_major);
            }
            __syncwarp();
            const int rr = warp * 16 + r;
            const int i = i0 + rr;
            const int ds = ds_s[rr];
            const float l2 = lse_s[rr], dl = delta_s[rr];
            unsigned int pp[16], dd[16];
#pragma unroll
            for (int c = 0; c < 16; c++) {
                int col = 4 * c + 2 * half;
                float2 s = *reinterpret_cast<const float2*>(Sw + r * G::LDS + col);
                int j = j0 + col;
                float px = (j >= ds && j <= i) ? exp2f(s.x * sl2 - l2) : 0.f;
                float py = (j + 1 >= ds && j + 1 <= i) ? exp2f(s.y * sl2 - l2) : 0.f;
                float dx = px * (dpv[c].x - dl) * scale, dy = py * (dpv[c].y - dl) * scale;
                pp[c] = (unsigned int) WT<Tag>::cvt(px) | ((unsigned int) WT<Tag>::cvt(py) << 16);
                dd[c] = (unsigned int) WT<Tag>::cvt(dx) | ((unsigned int) WT<Tag>::cvt(dy) << 16);
            }
            __syncwarp();
#pragma unroll
            for (int c = 0; c < 16; c++) {
                *reinterpret_cast<unsigned int*>(Pw + r * G::LDP + 4 * c + 2 * half) = pp[c];
                *reinterpret_cast<unsigned int*>(Pw + r * G::LDP + 64 + 4 * c + 2 * half) = dd[c];
            }
            __syncthreads();
            // dV += Pᵀ dO, dK += dSᵀ Q for this warp's 16 keys
#pragma unroll
            for (int kk = 0; kk < G::BR / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::col_major> pa, da;
                wmma::load_matrix_sync(pa, reinterpret_cast<const W*>(Ph + kk * 16 * G::LDP + warp * 16), G::LDP);
                wmma::load_matrix_sync(da, reinterpret_cast<const W*>(Ph + kk * 16 * G::LDP + 64 + warp * 16), G::LDP);
#pragma unroll
                for (int n = 0; n < D / 16; n++) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::row_major> b;
                    wmma::load_matrix_sync(b, reinterpret_cast<const W*>(dOs + kk * 16 * G::LDH + n * 16), G::LDH);
                    wmma::mma_sync(dvf[n], pa, b, dvf[n]);
                    wmma::load_matrix_sync(b, reinterpret_cast<const W*>(Qs + kk * 16 * G::LDH + n * 16), G::LDH);
                    wmma::mma_sync(dkf[n], da, b, dkf[n]);
                }
            }
            // dQ += dS K for this warp's 16 query rows (fp32 atomics)
            {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> da[G::BC / 16];
#pragma unroll
                for (int kk = 0; kk < G::BC / 16; kk++)
                    wmma::load_matrix_sync(da[kk], reinterpret_cast<const W*>(Pw + 64 + kk * 16), G::LDP);
                float* dqrow = dq_accum + ((long long) i * hq + h) * D + half * 8;
#pragma unroll
                for (int n = 0; n < D / 16; n++) {
                    AccFrag f;
                    wmma::fill_fragment(f, 0.f);
#pragma unroll
                    for (int kk = 0; kk < G::BC / 16; kk++) {
                        wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::row_major> b;
                        wmma::load_matrix_sync(b, reinterpret_cast<const W*>(Ks + kk * 16 * G::LDH + n * 16), G::LDH);
                        wmma::mma_sync(f, da[kk], b, f);
                    }
                    wmma::store_matrix_sync(scratch, f, 16, wmma::mem_row_major);
                    __syncwarp();
                    if (i < t) {
#pragma unroll
                        for (int c = 0; c < 8; c++) atomicAdd(dqrow + n * 16 + c, scratch[r * 16 + half * 8 + c]);
                    }
                    __syncwarp();
                }
            }
        }
    }
    // dk += dK, dv += dV (rounded once)
    const int j = j0 + warp * 16 + r;
#pragma unroll
    for (int n = 0; n < D / 16; n++) {
#pragma unroll
        for (int which = 0; which < 2; which++) {
            wmma::store_matrix_sync(scratch, which ? dvf[n] : dkf[n], 16, wmma::mem_row_major);
            __syncwarp();
            if (j < t) {
                unsigned short* dst = (which ? dv : dk) + ((long long) j * hkv + g) * D + n * 16 + half * 8;
                const float* src = scratch + r * 16 + half * 8;
#pragma unroll
                for (int c = 0; c < 8; c++) Storage<Tag>::store(dst, c, Storage<Tag>::load(dst, c) + src[c]);
            }
            __syncwarp();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// sm_80+ path: mma.sync m16n8k16 with ldmatrix and cp.async, scores and probabilities kept in registers.
// Compiled only for __CUDA_ARCH__ >= 800 (and not when FA_FORCE_VOLTA_PATH is defined, which tests use to run the
// WMMA path on a newer GPU).
// ---------------------------------------------------------------------------------------------------------------
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800 && !defined(FA_FORCE_VOLTA_PATH)
#define FA_MMA_PATH 1

__device__ __forceinline__ unsigned smem_addr(const void* p) { return (unsigned) __cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm4t(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(smem_addr(dst)), "l"(src), "r"(pred ? 16 : 0));
}
// 2^x with one MUFU.EX2 (flush-to-zero; 2^-inf = 0), as FlashAttention does: exp2f without fast-math adds a range
// fix-up around it
__device__ __forceinline__ float fa_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
// p[0] += a, p[1] += b in global memory for p = base + OFF floats (one vector reduction on sm_90, two scalar ones
// before); p 8-byte aligned
template <int OFF>
__device__ __forceinline__ void red_add2(float* base, float a, float b) {
#if __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v2.f32 [%0+%3], {%1, %2};\n" :: "l"(__cvta_generic_to_global(base)), "f"(a),
                 "f"(b), "n"(OFF * 4) : "memory");
#else
    atomicAdd(base + OFF, a);
    atomicAdd(base + OFF + 1, b);
#endif
}
// dq rows r and r + 8 of a thread's D/2 columns: red_add2 over the N accumulator pairs, offsets as immediates
template <int N> struct DqAdd {
    template <bool GUARD, int M>
    static __device__ __forceinline__ void run(float* d0, float* d1, const float (&a)[M][4], bool ok0, bool ok1) {
        DqAdd<N - 1>::template run<GUARD>(d0, d1, a, ok0, ok1);
        if (!GUARD || ok0) red_add2<(N - 1) * 8>(d0, a[N - 1][0], a[N - 1][1]);
        if (!GUARD || ok1) red_add2<(N - 1) * 8>(d1, a[N - 1][2], a[N - 1][3]);
    }
};
template <> struct DqAdd<0> {
    template <bool GUARD, int M>
    static __device__ __forceinline__ void run(float*, float*, const float (&)[M][4], bool, bool) {}
};
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
// all but the N most recently committed groups have landed
template <int N>
__device__ __forceinline__ void cp_async_wait_group() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }

template <typename Tag> struct MMA;
template <> struct MMA<f16_tag> {
    static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    // (lo, hi) -> one register, lo in the low half, round to nearest even
    static __device__ __forceinline__ unsigned pack(float lo, float hi) {
        unsigned r;
        asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};
template <> struct MMA<bf16_t> {
    static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ unsigned pack(float lo, float hi) {
        unsigned r;
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};

// Where element (r, c) of a shared-memory tile with LD 16-bit values per row lives. Padded (the default): rows of
// D + 8 values, so that the 8 rows one ldmatrix reads start in different banks. Swizzled (GPUs with 99 KiB per
// block, FA_SMALL_SMEM): rows of exactly LD values, each row's 16-byte chunks permuted within every group of 8 by
// XOR with the row's low 3 bits, which keeps ldmatrix conflict-free with no padding (tiles 6% smaller). Every
// access is a whole 16-byte chunk or lies inside one (c % 8 plus its width ≤ 8).
template <int LD, bool SWIZZLE> struct TileAt {
    static __device__ __forceinline__ int at(int r, int c) {
        if constexpr (SWIZZLE) {
            const int chunk = c >> 3;
            return r * LD + (((chunk ^ r) & 7) | (chunk & ~7)) * 8 + (c & 7);
        } else {
            return r * LD + c;
        }
    }
};

// ROWS × D of x (T, heads, D) from token r0, head h, into shared memory (row stride D + 8, or D swizzled) with
// cp.async, by THREADS threads; rows past t are zero-filled. Each thread copies the same 16-byte column of rows
// THREADS/VPR apart, so the loop has a fixed trip count and one 64-bit address computation (it runs once per step).
template <int D, int ROWS, int THREADS, bool SWIZZLE = false>
__device__ __forceinline__ void load_tile_async(unsigned short* dst, const unsigned short* src, int r0, int t,
                                                int heads, int h) {
    constexpr int VPR = D / 8, LDH = D + 8, RSTEP = THREADS / VPR;
    static_assert(THREADS % VPR == 0 && ROWS % RSTEP == 0, "tile not a whole number of passes");
    const int r = threadIdx.x / VPR, c = (threadIdx.x % VPR) * 8;
    const long long stride = (long long) RSTEP * heads * D;
    const unsigned short* p = src + ((long long) (r0 + r) * heads + h) * D + c;
    if constexpr (SWIZZLE) {
#pragma unroll
        for (int it = 0; it < ROWS / RSTEP; it++) {
            const bool ok = r0 + r + it * RSTEP < t;
            cp_async16(dst + TileAt<D, true>::at(r + it * RSTEP, c), ok ? p + it * stride : src, ok);
        }
    } else {
        unsigned short* q = dst + r * LDH + c;
#pragma unroll
        for (int it = 0; it < ROWS / RSTEP; it++) {
            const bool ok = r0 + r + it * RSTEP < t;
            cp_async16(q + it * RSTEP * LDH, ok ? p + it * stride : src, ok);
        }
    }
}

// Version 3 geometry. Forward: 128 query rows per block, 4 warps × 32 rows (two m16 tiles per warp, so every K/V
// fragment read from shared memory feeds two MMAs), 64 keys per step. Backward: 128 keys per block, 8 warps × 16
// keys, 64 queries per step; dQ = dS·K split over the 8 warps as 4 query tiles × 2 halves of D.
// SMALL (built with FA_SMALL_SMEM, for GPUs with 99 KiB of shared memory per block, sm_86/89, at D = 128, where the
// padded tiles do not fit): the same blocks and warps on swizzled tiles; the backward keeps one Q and one dO tile
// instead of two and writes dSᵀ into the dO tile once the step's dV/dK products have read it (98,816 and
// 100,096 bytes against 101,376).
#ifdef FA_SMALL_SMEM
#define FA_SMALL_TILES true
#else
#define FA_SMALL_TILES false
#endif
template <int D> struct MP {
    static constexpr bool SMALL = FA_SMALL_TILES && D == 128;
    static constexpr int LDH = SMALL ? D : D + 8, TILE = 64 * LDH;  // 16-bit elements of a 64-row tile
    typedef TileAt<LDH, SMALL> At;
    static constexpr int FWD_BR = 128, FWD_THREADS = 128;
    static constexpr int FWD_SMEM = 6 * TILE * 2 + FWD_BR * 4;  // Q (128 rows) | K[2] | V[2] | doc start per row
    static constexpr int BWD_BC = 128, BWD_THREADS = 256;
    static constexpr int LDT = SMALL ? 64 : 64 + 8;  // dSᵀ tile row stride
    typedef TileAt<LDT, SMALL> AtT;
    // K (128 rows) | V (128 rows) | Q[2] | dO[2] | dSᵀ (128 × LDT) | lse, delta, ds × 2 × 64 | doc × 64
    // SMALL: K | V | Q | dO, then dSᵀ | lse, delta, ds × 2 × 64 | doc × 64
    static constexpr int BWD_SMEM = SMALL ? 6 * TILE * 2 + 7 * 64 * 4 : 8 * TILE * 2 + BWD_BC * LDT * 2 + 7 * 64 * 4;
};

template <typename Tag, int D>
__device__ __forceinline__ void forward_mma(unsigned short* out, float* lse, const unsigned short* q,
                                            const unsigned short* k, const unsigned short* v, const int* cu,
                                            int num_seqs, int t, int hq, int hkv, float scale) {
    typedef MP<D> G;
    constexpr int LDH = G::LDH, BR = G::FWD_BR, NT = G::FWD_THREADS;
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned short* Qs = reinterpret_cast<unsigned short*>(smem);
    unsigned short* Kb = Qs + 2 * G::TILE;  // two buffers
    unsigned short* Vb = Qs + 4 * G::TILE;  // two buffers
    int* ds_s = reinterpret_cast<int*>(Qs + 6 * G::TILE);  // document start of each row (FA_BIG past t)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int tile = gridDim.x - 1 - blockIdx.x;  // longest (last) query tiles first
    const int i0 = tile * BR, h = blockIdx.y, g = h / (hq / hkv);
    const int i_last = min(i0 + BR, t) - 1;
    const int j_begin = cu[doc_of(cu, num_seqs, i0)];

    load_tile_async<D, BR, NT, G::SMALL>(Qs, q, i0, t, hq, h);
    load_tile_async<D, 64, NT, G::SMALL>(Kb, k, j_begin, t, hkv, g);
    load_tile_async<D, 64, NT, G::SMALL>(Vb, v, j_begin, t, hkv, g);
    cp_async_commit();

    for (int r = threadIdx.x; r < BR; r += NT) ds_s[r] = i0 + r < t ? cu[doc_of(cu, num_seqs, i0 + r)] : FA_BIG;

    const int gr = lane >> 2, tc = (lane & 3) * 2;
    const int wrow = i0 + warp * 32;  // first row of this warp
    const int lrow = warp * 32 + gr;  // this thread's rows: lrow + mt·16 + hf·8 within the tile, i0 + that in T
    const int ds_hi = i0 + lrow + 24 < t ? cu[doc_of(cu, num_seqs, i0 + lrow + 24)] : FA_BIG;  // of its last row
    const float sl2 = scale * FA_LOG2E;
    float m[2][2], l[2][2];
    float o[2][D / 8][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
        m[mt][0] = m[mt][1] = -FA_INF;
        l[mt][0] = l[mt][1] = 0.f;
#pragma unroll
        for (int n = 0; n < D / 8; n++) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.f;
    }

    int buf = 0;
    for (int j0 = j_begin; j0 <= i_last; j0 += 64, buf ^= 1) {
        cp_async_wait_all();
        __syncthreads();
        if (j0 + 64 <= i_last) {
            load_tile_async<D, 64, NT, G::SMALL>(Kb + (buf ^ 1) * G::TILE, k, j0 + 64, t, hkv, g);
            load_tile_async<D, 64, NT, G::SMALL>(Vb + (buf ^ 1) * G::TILE, v, j0 + 64, t, hkv, g);
            cp_async_commit();
        }
        if (j0 > wrow + 31) continue;  // every key of this step lies after every row of this warp
        const unsigned short* Ks = Kb + buf * G::TILE;
        const unsigned short* Vs = Vb + buf * G::TILE;
        float s[2][8][4];
#pragma unroll
        for (int mt = 0; mt < 2; mt++)
#pragma unroll
            for (int n = 0; n < 8; n++) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            unsigned qa[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
                ldsm4(qa[mt], Qs + G::At::at(warp * 32 + mt * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8));
#pragma unroll
            for (int np = 0; np < 4; np++) {
                unsigned b[4];
                ldsm4(b, Ks + G::At::at(np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 16 + ((lane >> 3) & 1) * 8));
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    MMA<Tag>::run(s[mt][2 * np], qa[mt], b[0], b[1]);
                    MMA<Tag>::run(s[mt][2 * np + 1], qa[mt], b[2], b[3]);
                }
            }
        }
        // every key of the step visible to every row of this thread (rows ascend, document starts too)?
        const bool full = j0 + 63 <= i0 + lrow && j0 >= ds_hi;
        if (!full) {
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int lr = lrow + mt * 16 + hf * 8, r = i0 + lr, d0 = ds_s[lr];
#pragma unroll
                    for (int n = 0; n < 8; n++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const int j = j0 + n * 8 + tc + e;
                            if (!(j >= d0 && j <= r)) s[mt][n][2 * hf + e] = -FA_INF;
                        }
                }
        }
        unsigned pk[2][4][4];  // P as 16-bit pairs, the A operands of P·V (m16 tile, 16-key chunk)
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
            float mx0 = -FA_INF, mx1 = -FA_INF;  // raw score maxima
#pragma unroll
            for (int n = 0; n < 8; n++) {
                mx0 = fmaxf(mx0, fmaxf(s[mt][n][0], s[mt][n][1]));
                mx1 = fmaxf(mx1, fmaxf(s[mt][n][2], s[mt][n][3]));
            }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            // running maxima in the scaled log2 domain (sl2 > 0, so scaling keeps the order; -inf stays -inf)
            mx0 = fmaxf(m[mt][0], mx0 * sl2);
            mx1 = fmaxf(m[mt][1], mx1 * sl2);
            const float ms0 = mx0 == -FA_INF ? 0.f : mx0, ms1 = mx1 == -FA_INF ? 0.f : mx1;
            const float a0 = fa_exp2(m[mt][0] - ms0), a1 = fa_exp2(m[mt][1] - ms1);
            m[mt][0] = mx0;
            m[mt][1] = mx1;
            float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
            for (int n = 0; n < 8; n++) {
                s[mt][n][0] = fa_exp2(fmaf(s[mt][n][0], sl2, -ms0));
                s[mt][n][1] = fa_exp2(fmaf(s[mt][n][1], sl2, -ms0));
                s[mt][n][2] = fa_exp2(fmaf(s[mt][n][2], sl2, -ms1));
                s[mt][n][3] = fa_exp2(fmaf(s[mt][n][3], sl2, -ms1));
                sum0 += s[mt][n][0] + s[mt][n][1];
                sum1 += s[mt][n][2] + s[mt][n][3];
                pk[mt][n >> 1][(n & 1) * 2] = MMA<Tag>::pack(s[mt][n][0], s[mt][n][1]);
                pk[mt][n >> 1][(n & 1) * 2 + 1] = MMA<Tag>::pack(s[mt][n][2], s[mt][n][3]);
            }
            l[mt][0] = l[mt][0] * a0 + sum0;  // per-thread partial sums; reduced across the quad at the end
            l[mt][1] = l[mt][1] * a1 + sum1;
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                o[mt][n][0] *= a0;
                o[mt][n][1] *= a0;
                o[mt][n][2] *= a1;
                o[mt][n][3] *= a1;
            }
        }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                unsigned b[4];
                ldsm4t(b, Vs + G::At::at(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 16 + (lane >> 4) * 8));
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    MMA<Tag>::run(o[mt][2 * dp], pk[mt][kk], b[0], b[1]);
                    MMA<Tag>::run(o[mt][2 * dp + 1], pk[mt][kk], b[2], b[3]);
                }
            }
        }
    }
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float lv = l[mt][hf];
            lv += __shfl_xor_sync(0xffffffffu, lv, 1);
            lv += __shfl_xor_sync(0xffffffffu, lv, 2);
            const float inv = lv > 0.f ? 1.f / lv : 0.f;
            const int r = i0 + lrow + mt * 16 + hf * 8;
            if (r < t) {
                if ((lane & 3) == 0) lse[(long long) h * t + r] = m[mt][hf] * FA_LN2 + logf(lv);
                unsigned short* op = out + ((long long) r * hq + h) * D + tc;
#pragma unroll
                for (int n = 0; n < D / 8; n++)
                    *reinterpret_cast<unsigned*>(op + n * 8) =
                        MMA<Tag>::pack(o[mt][n][2 * hf] * inv, o[mt][n][2 * hf + 1] * inv);
            }
        }
    }
}

template <typename Tag, int D>
__device__ __forceinline__ void backward_mma(float* dq_accum, unsigned short* dk, unsigned short* dv,
                                             const unsigned short* q, const unsigned short* k,
                                             const unsigned short* v, const unsigned short* dout, const float* lse,
                                             const float* delta, const int* cu, int num_seqs, int t, int hq,
                                             int hkv, float scale) {
    typedef MP<D> G;
    constexpr int LDH = G::LDH, LDT = G::LDT, BC = G::BWD_BC, NT = G::BWD_THREADS, KCH = BC / 16;
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned short* Ks = reinterpret_cast<unsigned short*>(smem);
    unsigned short* Vs = Ks + 2 * G::TILE;   // 128 rows each
    unsigned short* Qb = Ks + 4 * G::TILE;                      // two buffers (SMALL: one)
    unsigned short* dOb = Ks + (G::SMALL ? 5 : 6) * G::TILE;    // two buffers (SMALL: one)
    unsigned short* dSt = G::SMALL ? dOb : Ks + 8 * G::TILE;    // dSᵀ (128 keys × 64 queries); SMALL: in dO's tile
    float* lse_b = reinterpret_cast<float*>(G::SMALL ? Ks + 6 * G::TILE : dSt + BC * LDT);  // [2][64]
    float* delta_b = lse_b + 128;                             // [2][64]
    int* ds_b = reinterpret_cast<int*>(delta_b + 128);        // [2][64]
    int* doc_b = ds_b + 128;                                  // [64]: document of each staged query row
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int gr = lane >> 2, tc = (lane & 3) * 2;
    const int j0 = blockIdx.x * BC, g = blockIdx.y, group = hq / hkv;
    const int j_last = min(j0 + BC, t) - 1;
    const int i_end = cu[doc_of(cu, num_seqs, j_last) + 1];
    const int nsteps = (i_end - j0 + 63) / 64;
    const int total = group * nsteps;
    const float sl2 = scale * FA_LOG2E;
    // P is computed as scale·P (log2(scale) folded into the staged lse), so that dS = scale·P∘(dP − δ) is one
    // subtraction and one product; dV is divided by scale once at the end.
    const float log2_scale = log2f(scale);
    const int wkey = j0 + warp * 16;  // first key of this warp
    const int key0 = wkey + gr, key1 = key0 + 8;
    // dQ split: query tile mq (16 rows) and half dh of D
    const int mq = warp & 3, dh = warp >> 2;

    // the step's lse, delta and document starts (flash_attention_rows.cuh)
    const fa_rows::StagedRows rows{lse_b, delta_b, ds_b, doc_b};
    load_tile_async<D, BC, NT, G::SMALL>(Ks, k, j0, t, hkv, g);
    load_tile_async<D, BC, NT, G::SMALL>(Vs, v, j0, t, hkv, g);
    if (total > 0) {
        load_tile_async<D, 64, NT, G::SMALL>(Qb, q, j0, t, hq, g * group);
        load_tile_async<D, 64, NT, G::SMALL>(dOb, dout, j0, t, hq, g * group);
        rows.copy(lse, delta, g * group, j0, 0, t);
    }
    cp_async_commit();
    if (total > 0) {
        cp_async_wait_all();
        rows.finish(j0, 0, j0, cu, num_seqs, t, log2_scale);
    }

    float dka[D / 8][4], dva[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[n][e] = dva[n][e] = 0.f;

    int h = g * group, i0 = j0;  // head and first query row of the step (no division in the loop)
    for (int step = 0; step < total; step++) {
        const int buf = step & 1;
        int hn = h, in0 = i0 + 64;  // of the next step
        if (in0 >= j0 + nsteps * 64) {
            in0 = j0;
            hn++;
        }
        cp_async_wait_all();
        __syncthreads();
        if (step + 1 < total) {
            if constexpr (!G::SMALL) {  // SMALL: the next Q and dO once this step no longer reads them (below)
                load_tile_async<D, 64, NT>(Qb + (buf ^ 1) * G::TILE, q, in0, t, hq, hn);
                load_tile_async<D, 64, NT>(dOb + (buf ^ 1) * G::TILE, dout, in0, t, hq, hn);
            }
            rows.copy(lse, delta, hn, in0, buf ^ 1, t);
            cp_async_commit();
        }
        const unsigned short* Qs = G::SMALL ? Qb : Qb + buf * G::TILE;
        const unsigned short* dOs = G::SMALL ? dOb : dOb + buf * G::TILE;
        unsigned dsk[4][4];  // SMALL: this warp's dSᵀ, written to shared memory once every warp is done with dO
        const float* lse_s = lse_b + buf * 64;
        const float* delta_s = delta_b + buf * 64;
        const int* ds_s = ds_b + buf * 64;
        // 16-key chunks of this block that any query of the step can see (keys after i0 + 63 cannot)
        const int kmax = min(KCH, (i0 + 63 - j0) / 16 + 1);
        if (warp < kmax) {
            // Sᵀ = K Qᵀ and dPᵀ = V dOᵀ for this warp's 16 keys × 64 queries
            float st[8][4], dpt[8][4];
#pragma unroll
            for (int n = 0; n < 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) st[n][e] = dpt[n][e] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                unsigned ka[4], va[4];
                ldsm4(ka, Ks + G::At::at(warp * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8));
                ldsm4(va, Vs + G::At::at(warp * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8));
#pragma unroll
                for (int np = 0; np < 4; np++) {
                    unsigned b[4];
                    const int off =
                        G::At::at(np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 16 + ((lane >> 3) & 1) * 8);
                    ldsm4(b, Qs + off);
                    MMA<Tag>::run(st[2 * np], ka, b[0], b[1]);
                    MMA<Tag>::run(st[2 * np + 1], ka, b[2], b[3]);
                    ldsm4(b, dOs + off);
                    MMA<Tag>::run(dpt[2 * np], va, b[0], b[1]);
                    MMA<Tag>::run(dpt[2 * np + 1], va, b[2], b[3]);
                }
            }
            // scale·P and dS (transposed: rows are keys, columns queries); no mask where every query of the step
            // sees both keys of this thread (queries ascend, so do their document starts; ds = FA_BIG past t)
            // (the mask is a branch of its own: only the steps on the diagonal or a document boundary take it)
            const bool full = key1 <= i0 && key0 >= ds_s[63];
#pragma unroll
            for (int n = 0; n < 8; n++) {
                const float2 l2 = *reinterpret_cast<const float2*>(lse_s + n * 8 + tc);
                st[n][0] = fa_exp2(fmaf(st[n][0], sl2, -l2.x));
                st[n][1] = fa_exp2(fmaf(st[n][1], sl2, -l2.y));
                st[n][2] = fa_exp2(fmaf(st[n][2], sl2, -l2.x));
                st[n][3] = fa_exp2(fmaf(st[n][3], sl2, -l2.y));
            }
            if (!full) {
#pragma unroll
                for (int n = 0; n < 8; n++) {
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int c = n * 8 + tc + e, i = i0 + c, dsi = ds_s[c];
                        if (!(key0 >= dsi && key0 <= i)) st[n][e] = 0.f;
                        if (!(key1 >= dsi && key1 <= i)) st[n][2 + e] = 0.f;
                    }
                }
            }
#pragma unroll
            for (int n = 0; n < 8; n++) {
                const float2 dl = *reinterpret_cast<const float2*>(delta_s + n * 8 + tc);
                dpt[n][0] = st[n][0] * (dpt[n][0] - dl.x);
                dpt[n][1] = st[n][1] * (dpt[n][1] - dl.y);
                dpt[n][2] = st[n][2] * (dpt[n][2] - dl.x);
                dpt[n][3] = st[n][3] * (dpt[n][3] - dl.y);
            }
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                unsigned pa[4], da[4];
                pa[0] = MMA<Tag>::pack(st[2 * kk][0], st[2 * kk][1]);
                pa[1] = MMA<Tag>::pack(st[2 * kk][2], st[2 * kk][3]);
                pa[2] = MMA<Tag>::pack(st[2 * kk + 1][0], st[2 * kk + 1][1]);
                pa[3] = MMA<Tag>::pack(st[2 * kk + 1][2], st[2 * kk + 1][3]);
                da[0] = MMA<Tag>::pack(dpt[2 * kk][0], dpt[2 * kk][1]);
                da[1] = MMA<Tag>::pack(dpt[2 * kk][2], dpt[2 * kk][3]);
                da[2] = MMA<Tag>::pack(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]);
                da[3] = MMA<Tag>::pack(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3]);
                // dSᵀ to shared memory for dQ (SMALL: kept until dO's tile is free)
                if constexpr (G::SMALL) {
#pragma unroll
                    for (int e = 0; e < 4; e++) dsk[kk][e] = da[e];
                } else {
                    unsigned short* dst = dSt + (warp * 16 + gr) * LDT + kk * 16 + tc;
                    *reinterpret_cast<unsigned*>(dst) = da[0];
                    *reinterpret_cast<unsigned*>(dst + 8 * LDT) = da[1];
                    *reinterpret_cast<unsigned*>(dst + 8) = da[2];
                    *reinterpret_cast<unsigned*>(dst + 8 * LDT + 8) = da[3];
                }
                // dV += (scale·P)ᵀ dO, dK += dSᵀ Q over these 16 queries
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    unsigned b[4];
                    const int off = G::At::at(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 16 + (lane >> 4) * 8);
                    ldsm4t(b, dOs + off);
                    MMA<Tag>::run(dva[2 * dp], pa, b[0], b[1]);
                    MMA<Tag>::run(dva[2 * dp + 1], pa, b[2], b[3]);
                    ldsm4t(b, Qs + off);
                    MMA<Tag>::run(dka[2 * dp], da, b[0], b[1]);
                    MMA<Tag>::run(dka[2 * dp + 1], da, b[2], b[3]);
                }
            }
        } else if constexpr (!G::SMALL) {
            // keys no query of the step sees: zero rows of dSᵀ, so the dQ product below needs no bound
            uint4* dst = reinterpret_cast<uint4*>(dSt + (warp * 16 + (lane >> 1)) * LDT + (lane & 1) * 32);
#pragma unroll
            for (int x = 0; x < 4; x++) dst[x] = make_uint4(0u, 0u, 0u, 0u);
        }
        __syncthreads();
        if constexpr (G::SMALL) {
            // every warp is done with this step's Q and dO: the next Q comes in, dSᵀ goes into dO's tile
            if (step + 1 < total) {
                load_tile_async<D, 64, NT, true>(Qb, q, in0, t, hq, hn);
                cp_async_commit();
            }
            if (warp < kmax) {
#pragma unroll
                for (int kk = 0; kk < 4; kk++) {
                    const int r = warp * 16 + gr, c = kk * 16 + tc;
                    *reinterpret_cast<unsigned*>(dSt + G::AtT::at(r, c)) = dsk[kk][0];
                    *reinterpret_cast<unsigned*>(dSt + G::AtT::at(r + 8, c)) = dsk[kk][1];
                    *reinterpret_cast<unsigned*>(dSt + G::AtT::at(r, c + 8)) = dsk[kk][2];
                    *reinterpret_cast<unsigned*>(dSt + G::AtT::at(r + 8, c + 8)) = dsk[kk][3];
                }
            } else {
                const int r = warp * 16 + (lane >> 1);  // two lanes per row, four 16-byte chunks each
#pragma unroll
                for (int x = 0; x < 4; x++)
                    *reinterpret_cast<uint4*>(dSt + G::AtT::at(r, ((lane & 1) * 4 + x) * 8)) = make_uint4(0u, 0u, 0u, 0u);
            }
            __syncthreads();
        }
        // dQ = dS K for queries mq·16.. and columns dh·D/2.. (A = dS from dSᵀ with a transposing load), added to
        // dq_accum
        {
            float dqa[D / 16][4];
#pragma unroll
            for (int n = 0; n < D / 16; n++) dqa[n][0] = dqa[n][1] = dqa[n][2] = dqa[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < KCH; kk++) {
                unsigned a[4];
                ldsm4t(a, dSt + G::AtT::at(kk * 16 + (lane & 7) + (lane >> 4) * 8, mq * 16 + ((lane >> 3) & 1) * 8));
#pragma unroll
                for (int dp = 0; dp < D / 32; dp++) {
                    unsigned b[4];
                    ldsm4t(b, Ks + G::At::at(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                             dh * (D / 2) + dp * 16 + (lane >> 4) * 8));
                    MMA<Tag>::run(dqa[2 * dp], a, b[0], b[1]);
                    MMA<Tag>::run(dqa[2 * dp + 1], a, b[2], b[3]);
                }
            }
            const int qr0 = i0 + mq * 16 + gr;
            float* d0 = dq_accum + ((long long) qr0 * hq + h) * D + dh * (D / 2) + tc;
            float* d1 = d0 + 8LL * hq * D;
            if (i0 + 64 <= t)
                DqAdd<D / 16>::template run<false>(d0, d1, dqa, true, true);
            else
                DqAdd<D / 16>::template run<true>(d0, d1, dqa, qr0 < t, qr0 + 8 < t);
        }
        if constexpr (G::SMALL) {
            // every warp is done reading dSᵀ: the next dO comes into its tile, and the staged rows are finished while
            // it lands (they and the next Q were committed first)
            if (step + 1 < total) {
                __syncthreads();
                load_tile_async<D, 64, NT, true>(dOb, dout, in0, t, hq, hn);
                cp_async_commit();
                cp_async_wait_group<1>();
                rows.finish(in0, buf ^ 1, j0, cu, num_seqs, t, log2_scale);
            }
        } else if (step + 1 < total) {
            cp_async_wait_all();
            rows.finish(in0, buf ^ 1, j0, cu, num_seqs, t, log2_scale);
        }
        h = hn;
        i0 = in0;
    }
    fa_rows::add_key_gradients<Tag, D>(dk, dv, &dka[0][0], &dva[0][0], key0, tc, t, hkv, g, scale);
}
#endif  // sm_80+ path

// ---------------------------------------------------------------------------------------------------------------
// fp32 path: 16 × 16 tiles, 256 threads, CUDA cores
// ---------------------------------------------------------------------------------------------------------------

template <int D>
__device__ __forceinline__ void forward_f32(float* out, float* lse, const float* q, const float* k, const float* v,
                                            const int* cu, int num_seqs, int t, int hq, int hkv, float scale) {
    constexpr int B = 16, LD = D + 1, E = B * D / 256;
    __shared__ float Qs[B][LD], Ks[B][LD], Vs[B][LD], S[B][B + 1], alpha_s[B];
    const int tid = threadIdx.x;
    const int i0 = blockIdx.x * B, h = blockIdx.y, g = h / (hq / hkv);
    const int i_last = min(i0 + B, t) - 1;
    const int j_begin = cu[doc_of(cu, num_seqs, i0)];
    for (int idx = tid; idx < B * D; idx += 256) {
        int rr = idx / D, c = idx % D, i = i0 + rr;
        Qs[rr][c] = i < t ? q[((long long) i * hq + h) * D + c] : 0.f;
    }
    const int sr = tid >> 4, sc = tid & 15;
    const int si = i0 + sr;
    const int sds = si < t ? cu[doc_of(cu, num_seqs, si)] : FA_BIG;
    const float sl2 = scale * FA_LOG2E;
    float m = -FA_INF, l = 0.f;  // meaningful in threads 0..15 (row = tid)
    float o[E];
#pragma unroll
    for (int e = 0; e < E; e++) o[e] = 0.f;
    for (int j0 = j_begin; j0 <= i_last; j0 += B) {
        __syncthreads();
        for (int idx = tid; idx < B * D; idx += 256) {
            int rr = idx / D, c = idx % D, j = j0 + rr;
            bool ok = j < t;
            Ks[rr][c] = ok ? k[((long long) j * hkv + g) * D + c] : 0.f;
            Vs[rr][c] = ok ? v[((long long) j * hkv + g) * D + c] : 0.f;
        }
        __syncthreads();
        {
            float s = 0.f;
            for (int c = 0; c < D; c++) s += Qs[sr][c] * Ks[sc][c];
            int j = j0 + sc;
            S[sr][sc] = (j >= sds && j <= si) ? s * sl2 : -FA_INF;
        }
        __syncthreads();
        if (tid < B) {
            float mx = m;
            for (int c = 0; c < B; c++) mx = fmaxf(mx, S[tid][c]);
            float msafe = mx == -FA_INF ? 0.f : mx;
            float a = exp2f(m - msafe), sum = 0.f;
            for (int c = 0; c < B; c++) {
                float p = exp2f(S[tid][c] - msafe);
                S[tid][c] = p;
                sum += p;
            }
            l = l * a + sum;
            m = mx;
            alpha_s[tid] = a;
        }
        __syncthreads();
#pragma unroll
        for (int e = 0; e < E; e++) {
            int idx = tid + e * 256, rr = idx / D, c = idx % D;
            float acc = o[e] * alpha_s[rr];
            for (int jj = 0; jj < B; jj++) acc += S[rr][jj] * Vs[jj][c];
            o[e] = acc;
        }
    }
    __syncthreads();
    if (tid < B) {
        int i = i0 + tid;
        alpha_s[tid] = l > 0.f ? 1.f / l : 0.f;
        if (i < t) lse[(long long) h * t + i] = m * FA_LN2 + logf(l);
    }
    __syncthreads();
#pragma unroll
    for (int e = 0; e < E; e++) {
        int idx = tid + e * 256, rr = idx / D, c = idx % D, i = i0 + rr;
        if (i < t) out[((long long) i * hq + h) * D + c] = o[e] * alpha_s[rr];
    }
}

template <int D>
__device__ __forceinline__ void backward_f32(float* dq_accum, float* dk, float* dv, const float* q, const float* k,
                                             const float* v, const float* dout, const float* lse, const float* delta,
                                             const int* cu, int num_seqs, int t, int hq, int hkv, float scale) {
    constexpr int B = 16, LD = D + 1, E = B * D / 256;
    __shared__ float Ks[B][LD], Vs[B][LD], Qs[B][LD], dOs[B][LD], P[B][B + 1], dS[B][B + 1];
    __shared__ float lse_s[B], delta_s[B];
    __shared__ int ds_s[B];
    const int tid = threadIdx.x;
    const int j0 = blockIdx.x * B, g = blockIdx.y, group = hq / hkv;
    const int j_last = min(j0 + B, t) - 1;
    const int i_end = cu[doc_of(cu, num_seqs, j_last) + 1];
    const float sl2 = scale * FA_LOG2E;
    for (int idx = tid; idx < B * D; idx += 256) {
        int rr = idx / D, c = idx % D, j = j0 + rr;
        bool ok = j < t;
        Ks[rr][c] = ok ? k[((long long) j * hkv + g) * D + c] : 0.f;
        Vs[rr][c] = ok ? v[((long long) j * hkv + g) * D + c] : 0.f;
    }
    float dka[E], dva[E];
#pragma unroll
    for (int e = 0; e < E; e++) dka[e] = dva[e] = 0.f;
    const int sr = tid >> 4, sc = tid & 15;
    for (int hh = 0; hh < group; hh++) {
        const int h = g * group + hh;
        for (int i0 = j0; i0 < i_end; i0 += B) {
            __syncthreads();
            for (int idx = tid; idx < B * D; idx += 256) {
                int rr = idx / D, c = idx % D, i = i0 + rr;
                bool ok = i < t;
                Qs[rr][c] = ok ? q[((long long) i * hq + h) * D + c] : 0.f;
                dOs[rr][c] = ok ? dout[((long long) i * hq + h) * D + c] : 0.f;
            }
            if (tid < B) {
                int i = i0 + tid;
                bool ok = i < t;
                lse_s[tid] = ok ? lse[(long long) h * t + i] * FA_LOG2E : 0.f;
                delta_s[tid] = ok ? delta[(long long) h * t + i] : 0.f;
                ds_s[tid] = ok ? cu[doc_of(cu, num_seqs, i)] : FA_BIG;
            }
            __syncthreads();
            {
                float s = 0.f, dp = 0.f;
                for (int c = 0; c < D; c++) {
                    s += Qs[sr][c] * Ks[sc][c];
                    dp += dOs[sr][c] * Vs[sc][c];
                }
                int i = i0 + sr, j = j0 + sc;
                float p = (j >= ds_s[sr] && j <= i) ? exp2f(s * sl2 - lse_s[sr]) : 0.f;
                P[sr][sc] = p;
                dS[sr][sc] = p * (dp - delta_s[sr]) * scale;
            }
            __syncthreads();
#pragma unroll
            for (int e = 0; e < E; e++) {
                int idx = tid + e * 256, jj = idx / D, c = idx % D;
                float av = 0.f, ak = 0.f;
                for (int rr = 0; rr < B; rr++) {
                    av += P[rr][jj] * dOs[rr][c];
                    ak += dS[rr][jj] * Qs[rr][c];
                }
                dva[e] += av;
                dka[e] += ak;
            }
#pragma unroll
            for (int e = 0; e < E; e++) {
                int idx = tid + e * 256, rr = idx / D, c = idx % D, i = i0 + rr;
                float a = 0.f;
                for (int jj = 0; jj < B; jj++) a += dS[rr][jj] * Ks[jj][c];
                if (i < t) atomicAdd(dq_accum + ((long long) i * hq + h) * D + c, a);
            }
        }
    }
#pragma unroll
    for (int e = 0; e < E; e++) {
        int idx = tid + e * 256, jj = idx / D, c = idx % D, j = j0 + jj;
        if (j < t) {
            long long o = ((long long) j * hkv + g) * D + c;
            dk[o] += dka[e];
            dv[o] += dva[e];
        }
    }
}

// delta[h·T + i] = Σ_c dout[i, h, c]·out[i, h, c]: one warp per (token, head), 8 warps per block.
template <typename Tag, int D>
__device__ __forceinline__ void preprocess(float* delta, const typename Carrier<Tag>::type* out,
                                           const typename Carrier<Tag>::type* dout, int t, int hq) {
    long long idx = (long long) blockIdx.x * 8 + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (idx >= (long long) t * hq) return;
    int i = (int) (idx / hq), h = (int) (idx % hq);
    long long base = idx * D;
    float s = 0.f;
    for (int c = lane; c < D; c += 32) s += Storage<Tag>::load(dout, base + c) * Storage<Tag>::load(out, base + c);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) delta[(long long) h * t + i] = s;
}

template <typename Tag>
__device__ __forceinline__ void dq_finish(typename Carrier<Tag>::type* dq, const float* acc, long long n) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        Storage<Tag>::store(dq, i, Storage<Tag>::load(dq, i) + acc[i]);
}

}  // namespace fa

// ---------------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------------

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define FA_BF16_BODY(call) __trap();
#else
#define FA_BF16_BODY(call) call;
#endif
#define FA_F16_BODY(call) call;
#ifdef FA_MMA_PATH
#define FA_FWD_IMPL fa::forward_mma
#define FA_BWD_IMPL fa::backward_mma
#define FA_FWD_THREADS 128
#define FA_BWD_THREADS 256
#else
#define FA_FWD_IMPL fa::forward_tc
#define FA_BWD_IMPL fa::backward_tc
#define FA_FWD_THREADS 128
#define FA_BWD_THREADS 128
#endif

#define FA_TC_ENTRIES(SUF, TAG, BODY, D)                                                                           \
    extern "C" __global__ void __launch_bounds__(FA_FWD_THREADS) flash_attention_forward_##SUF##_d##D(                \
        unsigned short* out, float* lse, const unsigned short* q, const unsigned short* k, const unsigned short* v, \
        const int* cu_seqlens, int num_seqs, int t, int hq, int hkv, float softmax_scale) {                        \
        BODY((FA_FWD_IMPL<TAG, D>(out, lse, q, k, v, cu_seqlens, num_seqs, t, hq, hkv, softmax_scale)))         \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(FA_BWD_THREADS) flash_attention_backward_##SUF##_d##D(               \
        float* dq_accum, unsigned short* dk, unsigned short* dv, const unsigned short* q, const unsigned short* k,  \
        const unsigned short* v, const unsigned short* dout, const float* lse, const float* delta,                 \
        const int* cu_seqlens, int num_seqs, int t, int hq, int hkv, float softmax_scale) {                        \
        BODY((FA_BWD_IMPL<TAG, D>(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu_seqlens, num_seqs, t, hq,   \
                                      hkv, softmax_scale)))                                                        \
    }

FA_TC_ENTRIES(f16, f16_tag, FA_F16_BODY, 64)
FA_TC_ENTRIES(f16, f16_tag, FA_F16_BODY, 128)
FA_TC_ENTRIES(bf16, bf16_t, FA_BF16_BODY, 64)
FA_TC_ENTRIES(bf16, bf16_t, FA_BF16_BODY, 128)

#define FA_F32_ENTRIES(D)                                                                                          \
    extern "C" __global__ void __launch_bounds__(256) flash_attention_forward_f32_d##D(                           \
        float* out, float* lse, const float* q, const float* k, const float* v, const int* cu_seqlens,             \
        int num_seqs, int t, int hq, int hkv, float softmax_scale) {                                               \
        fa::forward_f32<D>(out, lse, q, k, v, cu_seqlens, num_seqs, t, hq, hkv, softmax_scale);                    \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) flash_attention_backward_f32_d##D(                          \
        float* dq_accum, float* dk, float* dv, const float* q, const float* k, const float* v, const float* dout,  \
        const float* lse, const float* delta, const int* cu_seqlens, int num_seqs, int t, int hq, int hkv,         \
        float softmax_scale) {                                                                                     \
        fa::backward_f32<D>(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu_seqlens, num_seqs, t, hq, hkv,         \
                            softmax_scale);                                                                        \
    }
FA_F32_ENTRIES(64)
FA_F32_ENTRIES(128)

#define FA_COMMON_ENTRIES(SUF, TAG, C)                                                                             \
    extern "C" __global__ void __launch_bounds__(256) flash_attention_backward_preprocess_##SUF##_d64(            \
        float* delta, const C* out, const C* dout, int t, int hq) {                                                \
        fa::preprocess<TAG, 64>(delta, out, dout, t, hq);                                                          \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) flash_attention_backward_preprocess_##SUF##_d128(           \
        float* delta, const C* out, const C* dout, int t, int hq) {                                                \
        fa::preprocess<TAG, 128>(delta, out, dout, t, hq);                                                         \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) flash_attention_dq_finish_##SUF(C* dq, const float* dq_accum, \
                                                                                      long long n) {               \
        fa::dq_finish<TAG>(dq, dq_accum, n);                                                                       \
    }
DEFINE_FOR_ALL_TYPES(FA_COMMON_ENTRIES)
