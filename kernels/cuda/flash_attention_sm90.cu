// FlashAttention forward for Hopper (sm_90a): warpgroup MMA (wgmma) with operands in shared memory.
// Same ABI, masking and numerics as flash_attention_forward_{bf16,f16}_d128 in flash_attention.cu (causal, GQA,
// packed documents, fp32 accumulation, lse in natural log); design, tiles and measurements in
// flash_attention_sm90.md beside this file. Compiled only for sm_90a (wgmma is an arch-specific feature); any
// other target gets entry points that trap, and the engine launches the mma.sync kernels there instead.
#include "common.cuh"
#include "flash_attention_rows.cuh"

namespace fa90 {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FA90_ENABLED 1

#define FA90_LOG2E 1.4426950408889634f
#define FA90_LN2 0.6931471805599453f
#define FA90_BIG 0x7fffffff
#define FA90_INF __int_as_float(0x7f800000)

// Geometry: 128 query rows per block as two warpgroups of 64 rows, 128 keys per step, head dim 128.
// A 128 × 128 tile of 16-bit values is stored as two column halves (dims 0–63, 64–127) of 128 rows × 128 bytes,
// each row's eight 16-byte chunks XOR-swizzled by (row mod 8): the 128-byte swizzle wgmma reads, which also keeps
// the cp.async stores free of bank conflicts. Halves are 1024-byte aligned (the swizzle repeats every 8 rows).
constexpr int D = 128, BR = 128, BC = 128, THREADS = 256;
constexpr int HALF_BYTES = 128 * 128;         // one column half of a 128-row tile
constexpr int TILE_BYTES = 2 * HALF_BYTES;    // 32 KiB
// Q | K[2] | V[2] | document start of each query row; +1024 for aligning the dynamic shared memory base
constexpr int SMEM = 5 * TILE_BYTES + BR * 4 + 1024;  // FlashAttentionLaunch.hopperForward()
static_assert(SMEM <= 227 * 1024, "more shared memory than an H100/H200 block may have");

__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned) __cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
// makes this thread's completed generic-proxy writes to shared memory (cp.async) visible to wgmma's async proxy
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// waits until at most the N most recently committed wgmma groups of this warpgroup are pending (groups finish in order)
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory"); }
// keeps the compiler from moving reads or writes of accumulator registers across a wgmma wait or fence
__device__ __forceinline__ void pin(float (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; i++) asm volatile("" : "+f"(d[i])::"memory");
}

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte offsets (all >> 4).
// K-major operands (Q, K): 8-row groups 1024 bytes apart (stride offset); the leading offset is unused.
// MN-major operand (V read as keys × dims): stride offset = 1024 between 8-key groups, leading offset = the
// distance between the two 64-dim column halves.
__device__ __forceinline__ unsigned long long descriptor(unsigned addr, unsigned lead, unsigned stride) {
    return (unsigned long long) ((addr & 0x3FFFF) >> 4) | ((unsigned long long) (lead >> 4) << 16)
           | ((unsigned long long) (stride >> 4) << 32) | (1ull << 62);
}

#ifndef FA90_FWD_PIPE
#define FA90_FWD_PIPE 0
#endif

#ifndef FA90_V_LEAD
#define FA90_V_LEAD HALF_BYTES
#define FA90_V_STRIDE 1024
#endif

// ROWS × 128 dims of x (T, heads, D) from token r0, head h, into a swizzled tile (two column halves of ROWS × 128
// bytes); rows past t are zero-filled. Thread i copies 16-byte chunk i % 16 of rows i / 16 + 16·n.
template <int ROWS>
__device__ __forceinline__ void load_tile(unsigned dst, const unsigned short* src, int r0, int t, int heads, int h) {
    const int ch = threadIdx.x & 15, r = threadIdx.x >> 4;
    const unsigned d0 = dst + (ch >> 3) * (ROWS * 128) + r * 128 + (((ch & 7) ^ (r & 7)) << 4);
    const long long stride = 16ll * heads * D;
    const unsigned short* p = src + ((long long) (r0 + r) * heads + h) * D + ch * 8;
#pragma unroll
    for (int n = 0; n < ROWS / 16; n++) {
        const bool ok = r0 + r + 16 * n < t;
        // rows 16 apart keep (row mod 8), so the swizzled chunk is the same; only the row offset moves
        cp_async16(d0 + n * 16 * 128, ok ? p + n * stride : src, ok);
    }
}

// The fp32 accumulators of an m64n64 (32 registers) or m64n128 (64 registers) wgmma: their operand numbers in the
// instruction text and their "+f" constraints, shared by every wrapper below.
#define FA90_D32_REGS "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define FA90_D64_REGS FA90_D32_REGS ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define FA90_D32_OUT \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define FA90_D64_OUT FA90_D32_OUT, \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// The wgmma shapes this file uses, for one 16-bit input type TY ("bf16" or "f16"); accumulators are fp32.
// Wgmma<Tag>::ss: d = A·B (accumulate = 0) or d += A·B, m64n128k16, A and B in shared memory, both K-major.
// Wgmma<Tag>::rs: d += A·B, m64n128k16, A in registers (per warp the m16n8k16 A-fragment layout), B MN-major.
// Wgmma64<Tag>::ss<TA, TB>: m64n64k16 from shared memory; TA/TB = 1: that operand MN-major (transposed).
#define FA90_WGMMA(TAG, TY)                                                                                         \
    template <> struct Wgmma<TAG> {                                                                                  \
        static __device__ __forceinline__ void ss(float (&d)[64], unsigned long long da, unsigned long long db,     \
                                                  int accumulate) {                                                 \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                \
                         "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " {" FA90_D64_REGS "}, %64, %65, p, 1, 1, 0, 0;\n}\n" \
                         : FA90_D64_OUT \
                         : "l"(da), "l"(db), "r"(accumulate));                                                      \
        }                                                                                                           \
        static __device__ __forceinline__ void rs(float (&d)[64], const unsigned (&a)[4], unsigned long long db) {  \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                \
                         "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " {" FA90_D64_REGS "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n" \
                         : FA90_D64_OUT \
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));                           \
        }                                                                                                           \
    };                                                                                                              \
    template <> struct Wgmma64<TAG> {                                                                                \
        template <int TA, int TB>                                                                                   \
        static __device__ __forceinline__ void ss(float (&d)[32], unsigned long long da, unsigned long long db,     \
                                                  int accumulate) {                                                 \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                \
                         "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " {" FA90_D32_REGS "}, %32, %33, p, 1, 1, %35, %36;\n}\n" \
                         : FA90_D32_OUT \
                         : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));                                    \
        }                                                                                                           \
    };
template <typename Tag> struct Wgmma;
template <typename Tag> struct Wgmma64;
FA90_WGMMA(bf16_t, "bf16")
FA90_WGMMA(f16_tag, "f16")

template <typename Tag> struct Pack2;
template <> struct Pack2<bf16_t> {
    static __device__ __forceinline__ unsigned run(float lo, float hi) {
        unsigned r;
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};
template <> struct Pack2<f16_tag> {
    static __device__ __forceinline__ unsigned run(float lo, float hi) {
        unsigned r;
        asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};

using fa_rows::doc_of;

// Accumulator layout of m64n128 (per warpgroup): warp w holds rows 16w..16w+15; thread (g = lane/4, q = lane%4)
// holds rows 16w+g (elements 4j, 4j+1) and 16w+g+8 (4j+2, 4j+3) at columns 8j + 2q + {0, 1}, j = 0..15 — the
// m16n8 layout of mma.sync repeated, so P converts to A fragments in registers exactly as in flash_attention.cu.
template <typename Tag>
__device__ __forceinline__ void forward(unsigned short* out, float* lse, const unsigned short* q,
                                        const unsigned short* k, const unsigned short* v, const int* cu,
                                        int num_seqs, int t, int hq, int hkv, float scale) {
    extern __shared__ unsigned char smem_raw[];
    const unsigned base = (smem_u32(smem_raw) + 1023) & ~1023u;
    unsigned char* base_ptr = smem_raw + (base - smem_u32(smem_raw));
    const unsigned Qs = base, Kb = base + TILE_BYTES, Vb = base + 3 * TILE_BYTES;
    int* ds_s = reinterpret_cast<int*>(base_ptr + 5 * TILE_BYTES);

    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int tile = gridDim.x - 1 - blockIdx.x;  // longest (last) query tiles first
    const int i0 = tile * BR, h = blockIdx.y, g = h / (hq / hkv);
    const int i_last = min(i0 + BR, t) - 1;
    const int j_begin = cu[doc_of(cu, num_seqs, i0)];

    load_tile<128>(Qs, q, i0, t, hq, h);
    load_tile<128>(Kb, k, j_begin, t, hkv, g);
#if !FA90_FWD_PIPE
    load_tile<128>(Vb, v, j_begin, t, hkv, g);
#endif
    cp_async_commit();
    for (int r = threadIdx.x; r < BR; r += THREADS) ds_s[r] = i0 + r < t ? cu[doc_of(cu, num_seqs, i0 + r)] : FA90_BIG;

    const int gr = lane >> 2, tc = (lane & 3) * 2;
    const int wg_last = i0 + wg * 64 + 63;           // last row of this warpgroup
    const int lrow = wg * 64 + warp * 16 + gr;        // rows lrow and lrow + 8 of the tile
    const float sl2 = scale * FA90_LOG2E;
    float m0 = -FA90_INF, m1 = -FA90_INF, l0 = 0.f, l1 = 0.f;
    float o[64], s[64];
#pragma unroll
    for (int i = 0; i < 64; i++) o[i] = 0.f;

    // descriptors of this warpgroup's 64 Q rows and of the tiles, 16 dims (32 bytes) per k step
    const unsigned qa = Qs + wg * 64 * 128;
    // the online softmax of a step whose keys start at j0: S in s (masked in place) → P packed to 16-bit pairs in p
    // (the A fragments of P·V, one per 16-key k step), the running max and sums updated; a0/a1 rescale O from the
    // old max to the new
    const auto softmax = [&](int j0, unsigned (&p)[8][4], float& a0, float& a1) {
        const int r0 = i0 + lrow, r1 = r0 + 8;
        const bool full = j0 + BC - 1 <= r0 && j0 >= ds_s[lrow + 8];
        if (!full) {
            const int d0 = ds_s[lrow], d1 = ds_s[lrow + 8];
#pragma unroll
            for (int n = 0; n < 16; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int j = j0 + n * 8 + tc + e;
                    if (!(j >= d0 && j <= r0)) s[4 * n + e] = -FA90_INF;
                    if (!(j >= d1 && j <= r1)) s[4 * n + 2 + e] = -FA90_INF;
                }
        }
        float mx0 = -FA90_INF, mx1 = -FA90_INF;
#pragma unroll
        for (int n = 0; n < 16; n++) {
            mx0 = fmaxf(mx0, fmaxf(s[4 * n], s[4 * n + 1]));
            mx1 = fmaxf(mx1, fmaxf(s[4 * n + 2], s[4 * n + 3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        mx0 = fmaxf(m0, mx0 * sl2);
        mx1 = fmaxf(m1, mx1 * sl2);
        const float ms0 = mx0 == -FA90_INF ? 0.f : mx0, ms1 = mx1 == -FA90_INF ? 0.f : mx1;
        a0 = ex2(m0 - ms0);
        a1 = ex2(m1 - ms1);
        m0 = mx0;
        m1 = mx1;
        float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
        for (int n = 0; n < 16; n++) {
            const float p0 = ex2(fmaf(s[4 * n], sl2, -ms0)), p1 = ex2(fmaf(s[4 * n + 1], sl2, -ms0));
            const float p2 = ex2(fmaf(s[4 * n + 2], sl2, -ms1)), p3 = ex2(fmaf(s[4 * n + 3], sl2, -ms1));
            sum0 += p0 + p1;
            sum1 += p2 + p3;
            p[n >> 1][(n & 1) * 2] = Pack2<Tag>::run(p0, p1);
            p[n >> 1][(n & 1) * 2 + 1] = Pack2<Tag>::run(p2, p3);
        }
        l0 = l0 * a0 + sum0;  // per-thread partial sums; reduced across the quad at the end
        l1 = l1 * a1 + sum1;
    };
    // S = Q·Kᵀ for the K tile at ks: one wgmma group (fenced: s and O's registers were written before it)
    const auto issue_s = [&](unsigned ks) {
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const unsigned off = (kk >> 2) * HALF_BYTES + (kk & 3) * 32;
            Wgmma<Tag>::ss(s, descriptor(qa + off, 16, 1024), descriptor(ks + off, 16, 1024), kk > 0);
        }
        wgmma_commit();
    };
    // O += P·V for the V tile at vs, P as register A operands: one wgmma group
    const auto issue_pv = [&](const unsigned (&p)[8][4], unsigned vs) {
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++)
            Wgmma<Tag>::rs(o, p[kk], descriptor(vs + kk * 16 * 128, FA90_V_LEAD, FA90_V_STRIDE));
        wgmma_commit();
    };
    // O from the old running max to the new (softmax's a0, a1 per row half)
    const auto rescale = [&](float a0, float a1) {
#pragma unroll
        for (int n = 0; n < 16; n++) {
            o[4 * n] *= a0;
            o[4 * n + 1] *= a0;
            o[4 * n + 2] *= a1;
            o[4 * n + 3] *= a1;
        }
    };
#if FA90_FWD_PIPE
    // FA90_FWD_PIPE (under test, flash_attention_sm90.md "Forward, pipelined"): step j issues S(j) = Q·K(j)ᵀ and then
    // O += P(j−1)·V(j−1), waits for S(j) only and computes P(j) while P(j−1)·V(j−1) runs; O is rescaled once that is
    // done. Step j copies K(j+1) and V(j); every warpgroup computes every step (masked where its rows precede the
    // keys), since a wgmma group in flight past a branch that could diverge serialises them all.
    const int nsteps = (i_last - j_begin) / BC + 1;
    unsigned pk[8][4], pn[8][4];  // P(j−1), in flight as P·V's A operand, and P(j)
    float a0 = 1.f, a1 = 1.f;
    // keeps pk live (its registers apart from pn's) until the P·V that reads it is done
    const auto pin_pk = [&]() {
#pragma unroll
        for (int kk = 0; kk < 8; kk++)
#pragma unroll
            for (int x = 0; x < 4; x++) asm volatile("" : "+r"(pk[kk][x])::"memory");
    };
    // pk = pn, pinned so that the compiler keeps the copies ahead of the next wgmma fence (ptxas serialises every
    // wgmma when an input register of one is written inside a pipeline stage: C7513)
    const auto copy_pn = [&]() {
#pragma unroll
        for (int kk = 0; kk < 8; kk++)
#pragma unroll
            for (int x = 0; x < 4; x++) {
                pk[kk][x] = pn[kk][x];
                asm volatile("" : "+r"(pk[kk][x])::"memory");
            }
    };
    // step 0: S(0) and P(0)
    cp_async_wait_all();
    fence_proxy_async();
    __syncthreads();
    if (nsteps > 1) load_tile<128>(Kb + TILE_BYTES, k, j_begin + BC, t, hkv, g);
    load_tile<128>(Vb, v, j_begin, t, hkv, g);
    cp_async_commit();
    issue_s(Kb);
    wgmma_wait_all();
    pin(s);
    softmax(j_begin, pn, a0, a1);
    copy_pn();
    for (int step = 1; step < nsteps; step++) {
        const int j0 = j_begin + step * BC, buf = step & 1;
        cp_async_wait_all();  // K(step) and V(step − 1)
        fence_proxy_async();
        __syncthreads();
        if (step + 1 < nsteps) load_tile<128>(Kb + (buf ^ 1) * TILE_BYTES, k, j0 + BC, t, hkv, g);
        load_tile<128>(Vb + buf * TILE_BYTES, v, j0, t, hkv, g);
        cp_async_commit();
        issue_s(Kb + buf * TILE_BYTES);
        issue_pv(pk, Vb + (buf ^ 1) * TILE_BYTES);
        wgmma_wait<1>();  // S(step); P(step − 1)·V(step − 1) may still run
        pin(s);
        softmax(j0, pn, a0, a1);
        wgmma_wait_all();
        pin(o);
        pin_pk();
        rescale(a0, a1);
        pin(o);
        copy_pn();
    }
    // the last P·V
    cp_async_wait_all();
    fence_proxy_async();
    __syncthreads();
    wgmma_fence();
    issue_pv(pk, Vb + ((nsteps - 1) & 1) * TILE_BYTES);
    wgmma_wait_all();
    pin(o);
    (void) wg_last;
#else
    int buf = 0;
    for (int j0 = j_begin; j0 <= i_last; j0 += BC, buf ^= 1) {
        cp_async_wait_all();
        fence_proxy_async();
        __syncthreads();
        if (j0 + BC <= i_last) {  // next step's K and V into the other buffer (its last readers have finished)
            load_tile<128>(Kb + (buf ^ 1) * TILE_BYTES, k, j0 + BC, t, hkv, g);
            load_tile<128>(Vb + (buf ^ 1) * TILE_BYTES, v, j0 + BC, t, hkv, g);
            cp_async_commit();
        }
        if (j0 > wg_last) continue;  // every key of the step follows every row of this warpgroup
        const unsigned ks = Kb + buf * TILE_BYTES, vs = Vb + buf * TILE_BYTES;

        issue_s(ks);
        wgmma_wait_all();
        pin(s);
        unsigned pk[8][4];
        float a0, a1;
        softmax(j0, pk, a0, a1);
        rescale(a0, a1);
        wgmma_fence();
        issue_pv(pk, vs);
        wgmma_wait_all();
        pin(o);
    }
#endif
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const float lv = hf ? l1 : l0, mv = hf ? m1 : m0;
        const float inv = lv > 0.f ? 1.f / lv : 0.f;
        const int r = i0 + lrow + hf * 8;
        if (r < t) {
            if ((lane & 3) == 0) lse[(long long) h * t + r] = mv * FA90_LN2 + logf(lv);
            unsigned short* op = out + ((long long) r * hq + h) * D + tc;
#pragma unroll
            for (int n = 0; n < 16; n++)
                *reinterpret_cast<unsigned*>(op + n * 8) = Pack2<Tag>::run(o[4 * n + 2 * hf] * inv, o[4 * n + 2 * hf + 1] * inv);
        }
    }
}
// Backward (FA-2's Algorithm 2 on wgmma): one block per 128 keys of a KV head, two warpgroups of 64 keys each,
// looping over every query head of the group and every 64-query step from the block's first key to the end of its
// last key's document. Per step and warpgroup: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (m64n64, K/V rows of the warpgroup against
// the Q/dO tile, both K-major), scale·Pᵀ and dSᵀ = scale·Pᵀ∘(dPᵀ − δ) in registers, dV += (scale·P)ᵀ·dO and
// dK += dSᵀ·Q (m64n128 with Pᵀ/dSᵀ as register A operands, dO/Q read MN-major), dSᵀ to shared memory; then
// dQ = dS·K for the step's 64 queries, warpgroup w taking dims 64w..64w+63 over all 128 keys (m64n64, dSᵀ and K
// both read MN-major), staged in shared memory and added to dq_accum by one bulk reduction. lse comes staged as
// lse·log2 e − log2 scale, so the exponentials give scale·P; dV is divided by scale once at the end (as in
// flash_attention.cu's mma.sync kernel). The order of the wgmma groups inside a step (flash_attention_sm90.md):
// Sᵀ, dPᵀ | dV | dQ, dK, the exponentials computed while dPᵀ runs, dSᵀ while dV runs, the dQ reduction while dK runs,
// and dK still running into the next step's Sᵀ.
constexpr int BWD_BC = 128, BWD_BR = 64;
constexpr int QTILE_BYTES = BWD_BR * 128 * 2;   // a 64-row tile: two halves of 64 rows × 128 bytes
// Q tiles: a step's dK may still read its tile while the next step's copies go to another, so three in turn
constexpr int BWD_QBUFS = 3;
// each warpgroup stages its 64 × 64 dQ tile in shared memory in the accumulators' own order and one thread adds the
// 16 KiB to dq_accum with a single asynchronous bulk reduction (cp.reduce.async.bulk), instead of 16 red.global per
// thread, which stalled the MMA warps; dq_accum is therefore laid out by tiles (dq_tile_index) and
// flash_attention_dq_finish_sm90 adds it to dq in (t, hq, D) order.
constexpr int DQ_STAGE_BYTES = 64 * 64 * 4;
// K | V | Q[3] | dO[2] | dSᵀ (128 keys × 64 queries, one swizzled half) | lse, delta, ds [2][64] | doc [64] |
// staged dQ [2] | align
constexpr int BWD_SMEM = 2 * TILE_BYTES + (BWD_QBUFS + 2) * QTILE_BYTES + BWD_BC * 128 + 7 * 64 * 4
                         + 2 * DQ_STAGE_BYTES + 1024;  // FlashAttentionLaunch.hopperBackward()
static_assert(BWD_SMEM <= 227 * 1024, "more shared memory than an H100/H200 block may have");

__device__ __forceinline__ void pin32(float (&d)[32]) {
#pragma unroll
    for (int i = 0; i < 32; i++) asm volatile("" : "+f"(d[i])::"memory");
}
// an m64n64 accumulator (keys × 64 queries) as 16-bit A fragments of m64n128k16, one per 16-query k step:
// x = (n = 2kk, key0), (2kk, key1), (2kk+1, key0), (2kk+1, key1)
template <typename Tag>
__device__ __forceinline__ void pack_a(unsigned (&a)[4][4], const float (&acc)[32]) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int x = 0; x < 4; x++) {
            const int n = 2 * kk + (x >> 1), o = (x & 1) * 2;
            a[kk][x] = Pack2<Tag>::run(acc[4 * n + o], acc[4 * n + o + 1]);
        }
}
__device__ __forceinline__ void red_add2(float* p, float a, float b) {
    asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" :: "l"(__cvta_generic_to_global(p)), "f"(a), "f"(b)
                 : "memory");
}
__device__ __forceinline__ void bulk_reduce_add(float* dst, unsigned src, int bytes) {
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n"
                 :: "l"(__cvta_generic_to_global(dst)), "r"(src), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// this thread's bulk operations have read their shared memory (it may be written again)
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void warpgroup_barrier(int wg) { asm volatile("bar.sync %0, 128;\n" :: "r"(1 + wg) : "memory"); }

// dq_accum by tiles: the 64 × 64 block of query tile tt (rows 64tt..), head h, dims 64·half.. is
// 4096 contiguous floats in the accumulator order of the wgmma that made it: float4 number (warp·8 + n)·32 + lane
// holds rows 16·warp + lane/4 (+8) at dims 8n + 2·(lane mod 4) (+1). Tiles of head h follow each other; rows of a
// last tile cut by t come after all tiles, in (row, head, dim) order.
__device__ __forceinline__ long long dq_tile_index(int h, int tt, int half, int nfull) {
    return (((long long) h * nfull + tt) * 2 + half) * 4096;
}

// dq (t, hq, D) += dq_accum laid out by tiles; one thread per 8 dims of a row and head
template <typename Tag>
__device__ __forceinline__ void dq_finish(typename Carrier<Tag>::type* dq, const float* acc, int t, int hq) {
    const int nfull = t / BWD_BR;
    const long long n = (long long) t * hq * (D / 8);
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        const int c8 = (int) (i % (D / 8));
        const long long rh = i / (D / 8);
        const int h = (int) (rh % hq), r = (int) (rh / hq);
        float v[8];
        if (r < nfull * BWD_BR) {
            const int rr = r % BWD_BR, warp = rr / 16, gr = rr % 8, hi = (rr / 8) % 2, nn = c8 % 8;
            const float* a = acc + dq_tile_index(h, r / BWD_BR, c8 / 8, nfull) + ((warp * 8 + nn) * 32 + gr * 4) * 4 + hi * 2;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const float2 x = *reinterpret_cast<const float2*>(a + q * 4);
                v[2 * q] = x.x;
                v[2 * q + 1] = x.y;
            }
        } else {
            const float* a = acc + (long long) hq * nfull * BWD_BR * D + ((long long) (r - nfull * BWD_BR) * hq + h) * D + c8 * 8;
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = a[j];
        }
        const long long o = rh * D + c8 * 8;
#pragma unroll
        for (int j = 0; j < 8; j++) Storage<Tag>::store(dq, o + j, Storage<Tag>::load(dq, o + j) + v[j]);
    }
}

template <typename Tag>
__device__ __forceinline__ void backward(float* dq_accum, unsigned short* dk, unsigned short* dv,
                                         const unsigned short* q, const unsigned short* k, const unsigned short* v,
                                         const unsigned short* dout, const float* lse, const float* delta,
                                         const int* cu, int num_seqs, int t, int hq, int hkv, float scale) {
    extern __shared__ unsigned char smem_raw[];
    const unsigned base = (smem_u32(smem_raw) + 1023) & ~1023u;
    unsigned char* base_ptr = smem_raw + (base - smem_u32(smem_raw));
    const unsigned Ks = base, Vs = base + TILE_BYTES, Qb = base + 2 * TILE_BYTES;
    const unsigned dOb = Qb + BWD_QBUFS * QTILE_BYTES, dSt = dOb + 2 * QTILE_BYTES;
    float* lse_b = reinterpret_cast<float*>(base_ptr + (dSt - base) + BWD_BC * 128);  // [2][64]
    float* delta_b = lse_b + 128;                                                                        // [2][64]
    int* ds_b = reinterpret_cast<int*>(delta_b + 128);                                                   // [2][64]
    int* doc_b = ds_b + 128;                                                                             // [64]
    float* dq_stage = reinterpret_cast<float*>(doc_b + 64);                                               // [2][4096]
    const int nfull = t / BWD_BR;  // query tiles of 64 rows that end inside t: bulk-reduced, by tiles
    unsigned char* dst_ptr = base_ptr + (dSt - base);

    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int gr = lane >> 2, tc = (lane & 3) * 2;
    const int j0 = blockIdx.x * BWD_BC, g = blockIdx.y, group = hq / hkv;
    const int j_last = min(j0 + BWD_BC, t) - 1;
    const int i_end = cu[doc_of(cu, num_seqs, j_last) + 1];
    const int nsteps = (i_end - j0 + BWD_BR - 1) / BWD_BR;
    const int total = group * nsteps;
    const float sl2 = scale * FA90_LOG2E, log2_scale = log2f(scale);
    const int lk0 = wg * 64 + warp * 16 + gr;      // this thread's keys: lk0 and lk0 + 8 of the block
    const int key0 = j0 + lk0, key1 = key0 + 8;

    // the step's lse, delta and document starts (flash_attention_rows.cuh)
    const fa_rows::StagedRows rows{lse_b, delta_b, ds_b, doc_b};
    load_tile<128>(Ks, k, j0, t, hkv, g);
    load_tile<128>(Vs, v, j0, t, hkv, g);
    if (total > 0) {
        load_tile<64>(Qb, q, j0, t, hq, g * group);
        load_tile<64>(dOb, dout, j0, t, hq, g * group);
        rows.copy(lse, delta, g * group, j0, 0, t);
    }
    cp_async_commit();
    if (total > 0) {
        cp_async_wait_all();
        rows.finish(j0, 0, j0, cu, num_seqs, t, log2_scale);
    }

    float dka[64], dva[64];
#pragma unroll
    for (int i = 0; i < 64; i++) dka[i] = dva[i] = 0.f;

    int h = g * group, i0 = j0;  // head and first query of the step
    int qbuf = 0;                 // the step's Q tile (BWD_QBUFS of them in turn)
    for (int step = 0; step < total; step++) {
        const int buf = step & 1, qnext = qbuf + 1 == BWD_QBUFS ? 0 : qbuf + 1;
        int hn = h, in0 = i0 + BWD_BR;  // of the next step
        if (in0 >= j0 + nsteps * BWD_BR) {
            in0 = j0;
            hn++;
        }
        cp_async_wait_all();
        fence_proxy_async();
        bulk_wait_read();  // the previous step's dQ tile has left the staging buffer
        __syncthreads();
        const unsigned qs = Qb + qbuf * QTILE_BYTES, dos = dOb + buf * QTILE_BYTES;
        const float* lse_s = lse_b + buf * 64;
        const float* delta_s = delta_b + buf * 64;
        const int* ds_s = ds_b + buf * 64;
        // wgmma groups stay in flight across steps and past branches, which ptxas serialises when they could
        // diverge: so every warpgroup computes every step, also one whose keys none of the step's queries sees
        // (its tiles are all masked, zero)
        unsigned pa[4][4], da[4][4];  // scale·Pᵀ and dSᵀ as A fragments, one per 16-query k step
        {
            float st[32], dpt[32];
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const unsigned ka = (kk >> 2) * HALF_BYTES + wg * 64 * 128 + (kk & 3) * 32;
                const unsigned qa = (kk >> 2) * (QTILE_BYTES / 2) + (kk & 3) * 32;
                Wgmma64<Tag>::template ss<0, 0>(st, descriptor(Ks + ka, 16, 1024), descriptor(qs + qa, 16, 1024), kk > 0);
            }
            wgmma_commit();  // Sᵀ alone: its exponentials run while dPᵀ's wgmma does
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const unsigned ka = (kk >> 2) * HALF_BYTES + wg * 64 * 128 + (kk & 3) * 32;
                const unsigned qa = (kk >> 2) * (QTILE_BYTES / 2) + (kk & 3) * 32;
                Wgmma64<Tag>::template ss<0, 0>(dpt, descriptor(Vs + ka, 16, 1024), descriptor(dos + qa, 16, 1024), kk > 0);
            }
            wgmma_commit();
            if (step + 1 < total) {  // the next step's tiles; the tensor cores have Sᵀ, dPᵀ and the last dK meanwhile
                load_tile<64>(Qb + qnext * QTILE_BYTES, q, in0, t, hq, hn);
                load_tile<64>(dOb + (buf ^ 1) * QTILE_BYTES, dout, in0, t, hq, hn);
                rows.copy(lse, delta, hn, in0, buf ^ 1, t);
                cp_async_commit();
            }
            wgmma_wait<1>();
            pin32(st);
            // element (key, query 8n + tc + e): st[4n + e] for key0, st[4n + 2 + e] for key1
#pragma unroll
            for (int n = 0; n < 8; n++) {
                const float2 l2 = *reinterpret_cast<const float2*>(lse_s + n * 8 + tc);
                st[4 * n] = ex2(fmaf(st[4 * n], sl2, -l2.x));
                st[4 * n + 1] = ex2(fmaf(st[4 * n + 1], sl2, -l2.y));
                st[4 * n + 2] = ex2(fmaf(st[4 * n + 2], sl2, -l2.x));
                st[4 * n + 3] = ex2(fmaf(st[4 * n + 3], sl2, -l2.y));
            }
            // no mask where every query of the step sees both keys of this thread (queries ascend, so do their
            // document starts; ds = FA90_BIG past t)
            const bool full = key1 <= i0 && key0 >= ds_s[BWD_BR - 1];
            if (!full) {
#pragma unroll
                for (int n = 0; n < 8; n++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int c = n * 8 + tc + e, i = i0 + c, dsi = ds_s[c];
                        if (!(key0 >= dsi && key0 <= i)) st[4 * n + e] = 0.f;
                        if (!(key1 >= dsi && key1 <= i)) st[4 * n + 2 + e] = 0.f;
                    }
            }
            // dV += (scale·P)ᵀ·dO goes first, so the tensor cores have it while dSᵀ is formed
            pack_a<Tag>(pa, st);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
                Wgmma<Tag>::rs(dva, pa[kk], descriptor(dos + kk * 16 * 128, QTILE_BYTES / 2, 1024));
            wgmma_commit();
            wgmma_wait<1>();  // dPᵀ done; dV may still run
            pin32(dpt);
#pragma unroll
            for (int n = 0; n < 8; n++) {
                const float2 dl = *reinterpret_cast<const float2*>(delta_s + n * 8 + tc);
                dpt[4 * n] = st[4 * n] * (dpt[4 * n] - dl.x);
                dpt[4 * n + 1] = st[4 * n + 1] * (dpt[4 * n + 1] - dl.y);
                dpt[4 * n + 2] = st[4 * n + 2] * (dpt[4 * n + 2] - dl.x);
                dpt[4 * n + 3] = st[4 * n + 3] * (dpt[4 * n + 3] - dl.y);
            }
            pack_a<Tag>(da, dpt);
            // dK += dSᵀ·Q is issued after dQ (below), so the dQ reduction runs while it computes
        }
        // dSᵀ rows lk0 and lk0 + 8 to shared memory (128-byte rows of 64 queries, chunks swizzled by key mod 8)
#pragma unroll
        for (int n = 0; n < 8; n++) {
            const unsigned off = (((unsigned) n ^ (lk0 & 7)) << 4) + tc * 2;
            *reinterpret_cast<unsigned*>(dst_ptr + lk0 * 128 + off) = da[n >> 1][(n & 1) * 2];
            *reinterpret_cast<unsigned*>(dst_ptr + (lk0 + 8) * 128 + off) = da[n >> 1][(n & 1) * 2 + 1];
        }
        fence_proxy_async();
        __syncthreads();
        // dQ (64 queries × dims 64wg..) = dS·K over the block's 128 keys, 16 keys per k step
        float dqa[32];
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BWD_BC / 16; kk++)
            Wgmma64<Tag>::template ss<1, 1>(dqa, descriptor(dSt + kk * 16 * 128, 1024, 1024),
                                            descriptor(Ks + wg * HALF_BYTES + kk * 16 * 128, HALF_BYTES, 1024), kk > 0);
        wgmma_commit();
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
            Wgmma<Tag>::rs(dka, da[kk], descriptor(qs + kk * 16 * 128, QTILE_BYTES / 2, 1024));
        wgmma_commit();
        wgmma_wait<1>();  // dQ (and dV) done; dK may still run, into the next step
        pin32(dqa);
        if (i0 + BWD_BR <= t) {  // block-uniform: every tile but a last one cut by t
            float4* stage = reinterpret_cast<float4*>(dq_stage) + wg * 1024;
#pragma unroll
            for (int n = 0; n < 8; n++)
                stage[(warp * 8 + n) * 32 + lane] = make_float4(dqa[4 * n], dqa[4 * n + 1], dqa[4 * n + 2], dqa[4 * n + 3]);
            fence_proxy_async();
            warpgroup_barrier(wg);
            if ((threadIdx.x & 127) == 0) {
                bulk_reduce_add(dq_accum + dq_tile_index(h, i0 / BWD_BR, wg, nfull), smem_u32(stage), 64 * 64 * 4);
                bulk_commit();
            }
        } else {  // the rows of the cut tile, in (row, head, dim) order after the tiles
            const int qr0 = i0 + warp * 16 + gr;
            float* d0 = dq_accum + (long long) hq * nfull * BWD_BR * D + ((long long) (qr0 - nfull * BWD_BR) * hq + h) * D
                        + wg * 64 + tc;
            float* d1 = d0 + 8LL * hq * D;
            const bool ok0 = qr0 < t, ok1 = qr0 + 8 < t;
#pragma unroll
            for (int n = 0; n < 8; n++) {
                if (ok0) red_add2(d0 + n * 8, dqa[4 * n], dqa[4 * n + 1]);
                if (ok1) red_add2(d1 + n * 8, dqa[4 * n + 2], dqa[4 * n + 3]);
            }
        }
        if (step + 1 < total) {
            cp_async_wait_all();
            rows.finish(in0, buf ^ 1, j0, cu, num_seqs, t, log2_scale);
        }
        h = hn;
        i0 = in0;
        qbuf = qnext;
    }
    wgmma_wait_all();  // the last step's dK
    pin(dva);
    pin(dka);
    bulk_wait_all();  // the last dQ tiles are in dq_accum
    fa_rows::add_key_gradients<Tag, D>(dk, dv, dka, dva, key0, tc, t, hkv, g, scale);
}
#endif  // sm_90a

}  // namespace fa90

#ifdef FA90_ENABLED
#define FA90_BODY(call) call;
#else
#define FA90_BODY(call) __trap();
#endif

#define FA90_ENTRY(SUF, TAG, CARRIER)                                                                              \
    extern "C" __global__ void __launch_bounds__(256, 1) flash_attention_forward_sm90_##SUF##_d128(                 \
        unsigned short* out, float* lse, const unsigned short* q, const unsigned short* k, const unsigned short* v, \
        const int* cu_seqlens, int num_seqs, int t, int hq, int hkv, float softmax_scale) {                        \
        FA90_BODY((fa90::forward<TAG>(out, lse, q, k, v, cu_seqlens, num_seqs, t, hq, hkv, softmax_scale)))       \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256, 1) flash_attention_backward_sm90_##SUF##_d128(                \
        float* dq_accum, unsigned short* dk, unsigned short* dv, const unsigned short* q, const unsigned short* k,  \
        const unsigned short* v, const unsigned short* dout, const float* lse, const float* delta,                 \
        const int* cu_seqlens, int num_seqs, int t, int hq, int hkv, float softmax_scale) {                        \
        FA90_BODY((fa90::backward<TAG>(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu_seqlens, num_seqs, t, hq,  \
                                       hkv, softmax_scale)))                                                       \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) flash_attention_dq_finish_sm90_##SUF##_d128(                  \
        CARRIER* dq, const float* dq_accum, int t, int hq) {                                                       \
        FA90_BODY((fa90::dq_finish<TAG>(dq, dq_accum, t, hq)))                                                     \
    }
FA90_ENTRY(bf16, bf16_t, bf16_t)
FA90_ENTRY(f16, f16_tag, f16_t)
