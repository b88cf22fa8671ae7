// FlashAttention forward for Hopper (sm_90a): warpgroup MMA (wgmma) with operands in shared memory.
// Same ABI, masking and numerics as flash_attention_forward_{bf16,f16}_d128 in flash_attention.cu (causal, GQA,
// packed documents, fp32 accumulation, lse in natural log); design, tiles and measurements in
// flash_attention_sm90.md beside this file. Compiled only for sm_90a (wgmma is an arch-specific feature); any
// other target gets entry points that trap, and the engine launches the mma.sync kernels there instead.
#include "common.cuh"
#include "flash_attention_rows.cuh"

namespace fa90 {

// A TMA tensor map (CUtensorMap, 128 bytes, 64-byte aligned) as the host encodes it with cuTensorMapEncodeTiled;
// passed by value as a __grid_constant__ kernel parameter, so the copy engine reads it from the parameter space.
struct alignas(64) TensorMap {
    unsigned long long bits[16];
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FA90_ENABLED 1

#define FA90_LOG2E 1.4426950408889634f
#define FA90_LN2 0.6931471805599453f
#define FA90_BIG 0x7fffffff
#define FA90_INF __int_as_float(0x7f800000)

// Geometry: 128 query rows per block as two warpgroups of 64 rows, 128 keys per step, head dim 128.
// A 128 × 128 tile of 16-bit values is stored as two column halves (dims 0–63, 64–127) of 128 rows × 128 bytes,
// each row's eight 16-byte chunks XOR-swizzled by (row mod 8): the 128-byte swizzle wgmma reads and TMA writes, which
// also keeps the cp.async stores free of bank conflicts. Halves are 1024-byte aligned (the swizzle repeats every 8 rows).
// THREADS: the two MMA warpgroups of either kernel; both add a producer warpgroup (FWD_THREADS, BWD's 384).
constexpr int D = 128, BR = 128, BC = 128, THREADS = 256, FWD_THREADS = 384;
constexpr int HALF_BYTES = 128 * 128;         // one column half of a 128-row tile
constexpr int TILE_BYTES = 2 * HALF_BYTES;    // 32 KiB
// stages of the forward's K and V tiles: three (they fit in 227 KiB) gave the cp.async producer a step more lead than
// two: 554 against 526 TF/s at 128K (bench/results/sm90-fwd-stages-2026-12-01); with TMA three and two are even:
// 597 against 599 at 128K, 648 against 631 at 16K (bench/results/sm90-fwd-tma-2026-12-02)
#ifndef FA90_FWD_STAGES
#define FA90_FWD_STAGES 3
#endif
constexpr int FWD_STAGES = FA90_FWD_STAGES;
// one stage deadlocks: the producer would wait for V(j−1)'s release before handing K(j) over, which that release needs
static_assert(FWD_STAGES >= 2, "the forward's lag-one hand-over needs at least two stages");
// Q | K[stages] | V[stages] | document start of each query row | mbarriers full K[stages], V[stages], empty K[stages],
// V[stages]; +1024 for aligning the dynamic shared memory base
constexpr int FWD_SMEM = (1 + 2 * FWD_STAGES) * TILE_BYTES + BR * 4 + 4 * FWD_STAGES * 8 + 1024;  // FlashAttentionLaunch.hopperForward()
static_assert(FWD_SMEM <= 227 * 1024, "more shared memory than an H100/H200 block may have");

__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned) __cvta_generic_to_shared(p); }
// a launch with fewer threads or less dynamic shared memory than the kernel's layout needs (the host's figures in
// FlashAttentionLaunch and the Python harness restate it) traps instead of writing past its shared memory
__device__ __forceinline__ void check_launch(int threads, int smem) {
    unsigned have;
    asm("mov.u32 %0, %%dynamic_smem_size;\n" : "=r"(have));
    if (blockDim.x != threads || blockDim.y != 1 || blockDim.z != 1 || have < (unsigned) smem) __trap();
}

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
// waits until at most this thread's N most recent cp.async groups are pending
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }
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

// mbarriers in shared memory, for the warp-specialised kernels' producer/consumer hand-over
__device__ __forceinline__ void mbar_init(unsigned bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(bar), "r"(count) : "memory");
}
// release: this thread's earlier writes are visible to whoever waits for the phase this arrival completes
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" :: "r"(bar) : "memory");
}
// acquire: returns once the phase of the given parity has completed
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile("{\n.reg .pred done;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                 "@!done bra WAIT;\n}\n" :: "r"(bar), "r"(parity) : "memory");
}
// arrives on the barrier and adds bytes to the transaction count its current phase also waits for
__device__ __forceinline__ void mbar_arrive_expect_tx(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(bar), "r"(bytes) : "memory");
}
// one box of a 3-d tensor map (coordinates innermost first) into shared memory by the copy engine, with the map's
// swizzle, zero-filled out of bounds; its bytes complete the barrier's transaction count when they have landed. The
// map must be the __grid_constant__ parameter itself, passed by reference: a copy would sit in local memory, which
// the copy engine cannot read.
__device__ __forceinline__ void tma_load_3d(unsigned dst, const TensorMap& map, int c0, int c1, int c2, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
                 : "memory");
}
// makes this thread's mbarrier.init visible to the copy engine's complete_tx (before the block-wide barrier)
__device__ __forceinline__ void fence_barrier_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
__device__ __forceinline__ void mma_barrier() { asm volatile("bar.sync 1, 256;\n" ::: "memory"); }

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

#ifndef FA90_V_LEAD
#define FA90_V_LEAD HALF_BYTES
#define FA90_V_STRIDE 1024
#endif

// ROWS × 128 dims of x (T, heads, D) from token r0, head h, into a swizzled tile (two column halves of ROWS × 128
// bytes); rows past t are zero-filled. Thread tid of NT copies 16-byte chunk tid % 16 of rows tid / 16 + (NT / 16)·n,
// UNROLL passes at a time (the cp.async producers this was written for had too few registers for every pass's
// address at once; its callers now, the MMA warpgroups, take the default: all passes).
template <int ROWS, int NT = THREADS, int UNROLL = ROWS / (NT / 16)>
__device__ __forceinline__ void load_tile(unsigned dst, const unsigned short* src, int r0, int t, int heads, int h,
                                          int tid = threadIdx.x) {
    const int ch = tid & 15, r = tid >> 4;
    const unsigned d0 = dst + (ch >> 3) * (ROWS * 128) + r * 128 + (((ch & 7) ^ (r & 7)) << 4);
    constexpr int STEP = NT / 16;  // rows a pass copies; a multiple of 8, so the swizzled chunk stays the same
    static_assert(STEP % 8 == 0 && ROWS % STEP == 0, "rows per pass must keep (row mod 8)");
    const long long stride = (long long) STEP * heads * D;
    const unsigned short* p = src + ((long long) (r0 + r) * heads + h) * D + ch * 8;
#pragma unroll UNROLL
    for (int n = 0; n < ROWS / STEP; n++) {
        const bool ok = r0 + r + STEP * n < t;
        cp_async16(d0 + n * STEP * 128, ok ? p + n * stride : src, ok);
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
//
// 384 threads: warpgroups 0 and 1 compute 64 query rows each, warpgroup 2 is a producer whose first thread has the
// copy engine (TMA, from tensor maps the host encodes) fetch every step's K and V tiles into FWD_STAGES stages each,
// handed over through mbarriers, as the backward's are: "full" (the thread's arrival with the tile's byte count; the
// tile's bytes complete it) and "empty" (each MMA warp arrives once its wgmma have read the tile). K and V have barriers of their own, so a K tile is released as soon as S = Q·Kᵀ
// is done, before the softmax, and the next K tile can go out while P·V still reads V. A stage is refilled once all
// eight MMA warps have released it; the MMA warpgroups meet only at the ping-pong barriers that order their wgmma.
template <typename Tag>
__device__ __forceinline__ void forward(unsigned short* out, float* lse, const unsigned short* q,
                                        const unsigned short* k, const unsigned short* v, const int* cu,
                                        int num_seqs, int t, int hq, int hkv, float scale,
                                        const TensorMap& k_map, const TensorMap& v_map) {
    check_launch(FWD_THREADS, FWD_SMEM);
    extern __shared__ unsigned char smem_raw[];
    const unsigned base = (smem_u32(smem_raw) + 1023) & ~1023u;
    unsigned char* base_ptr = smem_raw + (base - smem_u32(smem_raw));
    constexpr int S = FWD_STAGES;
    const unsigned Qs = base, Kb = base + TILE_BYTES, Vb = base + (1 + S) * TILE_BYTES;
    int* ds_s = reinterpret_cast<int*>(base_ptr + (1 + 2 * S) * TILE_BYTES);
    // barrier of tile kind (0: K, 1: V) and stage: full_bar + 8 · (S · kind + stage), empty_bar likewise
    const unsigned full_bar = base + (1 + 2 * S) * TILE_BYTES + BR * 4, empty_bar = full_bar + 2 * S * 8;

    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int tile = gridDim.x - 1 - blockIdx.x;  // longest (last) query tiles first
    const int i0 = tile * BR, h = blockIdx.y, g = h / (hq / hkv);
    const int i_last = min(i0 + BR, t) - 1;
    const int j_begin = cu[doc_of(cu, num_seqs, i0)];
    const int nsteps = (i_last - j_begin) / BC + 1;

    // Q by the MMA warpgroups
    if (threadIdx.x < THREADS) {
        load_tile<128>(Qs, q, i0, t, hq, h);
        cp_async_commit();
    }
    if (threadIdx.x == 0) {
        for (int b = 0; b < 2 * S; b++) {
            mbar_init(full_bar + 8 * b, 1);
            mbar_init(empty_bar + 8 * b, 8);
        }
        fence_barrier_init();
    }
    for (int r = threadIdx.x; r < BR; r += FWD_THREADS) ds_s[r] = i0 + r < t ? cu[doc_of(cu, num_seqs, i0 + r)] : FA90_BIG;
    if (threadIdx.x < THREADS) {
        cp_async_wait_all();  // Q
        fence_proxy_async();
    }
    __syncthreads();  // Q, the rows' document starts and the mbarriers
    // The producer splits off here, before the MMA warpgroups' state exists. Registers: the MMA warpgroups need about
    // 200, so the producer gets 40 (384 × 168 = 2 × 128 × 232 + 128 × 40; with 24 the cp.async producer's address
    // arithmetic spilled; 24 for the one-thread TMA producer is not tried).
    if (threadIdx.x >= THREADS) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
        const int p = threadIdx.x - THREADS;
        // one thread has the copy engine (TMA) fetch every tile, K(0), V(0), K(1), V(1), …, each as two 64-dim halves,
        // once its stage is free; the tile's bytes complete its full barrier. Against 128 threads issuing cp.async and
        // handing each tile over once it had landed: 541 → 597 TF/s at 128K (bench/results/sm90-fwd-tma-2026-12-02)
        if (p != 0) return;
        for (int n = 0; n < 2 * nsteps; n++) {
            const int step = n >> 1, kind = n & 1, stg = step % S, b = S * kind + stg;
            if (step >= S) mbar_wait(empty_bar + 8 * b, (step / S - 1) & 1);
            const unsigned dst = (kind ? Vb : Kb) + stg * TILE_BYTES, bar = full_bar + 8 * b;
            mbar_arrive_expect_tx(bar, TILE_BYTES);
            tma_load_3d(dst, kind ? v_map : k_map, 0, g, j_begin + step * BC, bar);
            tma_load_3d(dst + HALF_BYTES, kind ? v_map : k_map, 64, g, j_begin + step * BC, bar);
        }
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");

    const int gr = lane >> 2, tc = (lane & 3) * 2;
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
    // the step's K (kind 0) or V (kind 1) tile in stage stg has landed / this warp's wgmma have read it
    const auto acquire = [&](int kind, int step) { mbar_wait(full_bar + 8 * (S * kind + step % S), (step / S) & 1); };
    const auto release = [&](int kind, int stg) {
        __syncwarp();
        if (lane == 0) mbar_arrive(empty_bar + 8 * (S * kind + stg));
    };
    // Ping-pong: the warpgroups issue each step's wgmma in turn, so one's softmax runs while the other's matrix
    // products do. Warpgroup w waits at named barrier 2 + w until the other has issued its own, then lets the other
    // go (barrier 3 − w); warpgroup 1 lets warpgroup 0 go first and skips its last arrival, so every arrival is
    // waited for (both take every step's turn).
    if (wg == 1) asm volatile("bar.arrive 2, 256;\n" ::: "memory");
    const auto turn_wait = [&]() { asm volatile("bar.sync %0, 256;\n" :: "r"(2 + wg) : "memory"); };
    const auto turn_pass = [&](int step) {
        if (wg == 0 || step + 1 < nsteps) asm volatile("bar.arrive %0, 256;\n" :: "r"(3 - wg) : "memory");
    };

    // Intra-warpgroup overlap (FlashAttention-3's): step j issues S(j) = Q·K(j)ᵀ and then O += P(j−1)·V(j−1),
    // waits for S(j) only, releases K(j) and computes P(j) while P(j−1)·V(j−1) runs; then O is rescaled and V(j−1)
    // released. Every warpgroup computes every step (masked where its rows precede the keys): a wgmma group in
    // flight past a branch that could diverge makes ptxas serialise them all.
    // P(j−1), in flight as P·V's A operand, and P(j) are two arrays that swap roles every step (the loop body is
    // written twice): had P(j) been copied into P(j−1)'s registers, ptxas would serialise every wgmma (C7513)
    unsigned pa[8][4], pb[8][4];
    float a0, a1;
    // keeps p live (its registers apart from the new P's) until the P·V that reads it is done
    const auto pin_p = [&](unsigned (&p)[8][4]) {
#pragma unroll
        for (int kk = 0; kk < 8; kk++)
#pragma unroll
            for (int x = 0; x < 4; x++) asm volatile("" : "+r"(p[kk][x])::"memory");
    };
    // step `step` ≥ 1: P(step) into pn while P(step − 1)·V(step − 1) runs from po
    const auto overlap_step = [&](int step, unsigned (&pn)[8][4], unsigned (&po)[8][4]) {
        const int j0 = j_begin + step * BC, stg = step % S, prev = (step - 1) % S;
        acquire(0, step);
        acquire(1, step - 1);
        turn_wait();
        issue_s(Kb + stg * TILE_BYTES);
        issue_pv(po, Vb + prev * TILE_BYTES);
        turn_pass(step);
        wgmma_wait<1>();  // S(step); P(step − 1)·V(step − 1) may still run
        pin(s);
        release(0, stg);
        softmax(j0, pn, a0, a1);
        pin_p(pn);
        wgmma_wait_all();
        pin(o);
        pin_p(po);
        release(1, prev);
        rescale(a0, a1);
        pin(o);
    };
    acquire(0, 0);
    turn_wait();
    issue_s(Kb);
    turn_pass(0);
    wgmma_wait_all();
    pin(s);
    release(0, 0);
    softmax(j_begin, pa, a0, a1);  // O is zero: nothing to rescale
    pin_p(pa);
    for (int step = 1; step < nsteps; step += 2) {
        overlap_step(step, pb, pa);
        if (step + 1 < nsteps) overlap_step(step + 1, pa, pb);
    }
    // the last P·V (its V tile is not released: nothing follows it)
    acquire(1, nsteps - 1);
    const unsigned v_last = Vb + (nsteps - 1) % S * TILE_BYTES;
    if ((nsteps - 1) & 1) {
        wgmma_fence();
        issue_pv(pb, v_last);
        wgmma_wait_all();
    } else {
        wgmma_fence();
        issue_pv(pa, v_last);
        wgmma_wait_all();
    }
    pin(o);
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
// Backward (FA-2's Algorithm 2 on wgmma): one block per 128 keys of a KV head, looping over every query head of the
// group and every 64-query step from the block's first key to the end of its last key's document. 384 threads in
// three warpgroups (flash_attention_sm90.md "Backward"): warpgroups 0 and 1 compute (64 keys each), warpgroup 2 is a
// producer that has the copy engine fetch each step's Q and dO tiles (TMA, from tensor maps the host encodes) and
// stages its lse, delta and document starts, handing the two stages over through mbarriers: "full" (64 producer
// threads arrive once the rows are written, and the tiles' bytes complete it) and "empty" (each MMA warp arrives once
// its wgmma have read the stage). The producer gives
// its registers to the MMA warpgroups (setmaxnreg: 24 for it, 240 for them: 384 × 168 = 2 × 128 × 240 + 128 × 24).
// Per step and MMA warpgroup: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (m64n64, K/V rows of the warpgroup against the Q/dO tile,
// both K-major), scale·Pᵀ and dSᵀ = scale·Pᵀ∘(dPᵀ − δ) in registers, dV += (scale·P)ᵀ·dO and dK += dSᵀ·Q (m64n128
// with Pᵀ/dSᵀ as register A operands, dO/Q read MN-major), dSᵀ to shared memory (two tiles in turn, so one barrier a
// step orders the warpgroups); then dQ = dS·K for the step's 64 queries, warpgroup w taking dims 64w..64w+63 over
// all 128 keys (m64n64, dSᵀ and K both read MN-major), staged in shared memory and added to dq_accum by one bulk
// reduction. lse comes staged as lse·log2 e − log2 scale, so the exponentials give scale·P; dV is divided by scale
// once at the end (as in flash_attention.cu's mma.sync kernel). Wgmma groups in the order Sᵀ | dPᵀ | dV | dQ, dK: the
// exponentials computed while dPᵀ runs, dSᵀ while dV runs, the dQ reduction while dK runs.
constexpr int BWD_BC = 128, BWD_BR = 64;
constexpr int QTILE_BYTES = BWD_BR * 128 * 2;   // a 64-row tile: two halves of 64 rows × 128 bytes
// each warpgroup stages its 64 × 64 dQ tile in shared memory in the accumulators' own order and one thread adds the
// 16 KiB to dq_accum with a single asynchronous bulk reduction (cp.reduce.async.bulk), instead of 16 red.global per
// thread, which stalled the MMA warps; dq_accum is therefore laid out by tiles (dq_tile_index) and
// flash_attention_dq_finish_sm90 adds it to dq in (t, hq, D) order.
constexpr int DQ_STAGE_BYTES = 64 * 64 * 4;
#ifndef FA90_BWD_STAGES
#define FA90_BWD_STAGES 2
#endif
constexpr int BWD_STAGES = FA90_BWD_STAGES, BWD_DST = 2;
constexpr int BWD_STAGE_BYTES = 2 * QTILE_BYTES;  // Q | dO
constexpr int BWD_ROWS_BYTES = 3 * 64 * 4;        // lse (log2 domain, less log2 scale) | delta | document start
// K | V | stages (Q, dO) | dSᵀ tiles | staged dQ [2] | rows of each stage | mbarriers full, empty | align
constexpr int BWD_SMEM = 2 * TILE_BYTES + BWD_STAGES * BWD_STAGE_BYTES + BWD_DST * BWD_BC * 128 + 2 * DQ_STAGE_BYTES
                         + BWD_STAGES * BWD_ROWS_BYTES + 2 * BWD_STAGES * 8 + (BWD_STAGES > 2 ? 0 : 1024);  // FlashAttentionLaunch.hopperBackward()
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
// named barriers: 1 for both MMA warpgroups (mma_barrier), 2 and 3 for one each
__device__ __forceinline__ void warpgroup_barrier(int wg) { asm volatile("bar.sync %0, 128;\n" :: "r"(2 + wg) : "memory"); }

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
                                         const int* cu, int num_seqs, int t, int hq, int hkv, float scale,
                                         const TensorMap& q_map, const TensorMap& do_map) {
    extern __shared__ unsigned char smem_raw[];
    const unsigned base = (smem_u32(smem_raw) + 1023) & ~1023u;
    // three stages leave no room for the alignment pad: they run only where the base is aligned already
    check_launch(384, BWD_STAGES > 2 ? BWD_SMEM + (int) (base - smem_u32(smem_raw)) : BWD_SMEM);
    unsigned char* base_ptr = smem_raw + (base - smem_u32(smem_raw));
    const unsigned Ks = base, Vs = base + TILE_BYTES, stages = base + 2 * TILE_BYTES;
    const unsigned dSb = stages + BWD_STAGES * BWD_STAGE_BYTES, dqs = dSb + BWD_DST * BWD_BC * 128;
    const unsigned rows_at = dqs + 2 * DQ_STAGE_BYTES, full_bar = rows_at + BWD_STAGES * BWD_ROWS_BYTES;
    const unsigned empty_bar = full_bar + BWD_STAGES * 8;
    float* rows = reinterpret_cast<float*>(base_ptr + (rows_at - base));  // [stage][lse | delta | ds][64]
    const int nfull = t / BWD_BR;

    const int j0 = blockIdx.x * BWD_BC, g = blockIdx.y, group = hq / hkv;
    const int j_last = min(j0 + BWD_BC, t) - 1;
    const int i_end = cu[doc_of(cu, num_seqs, j_last) + 1];
    const int nsteps = (i_end - j0 + BWD_BR - 1) / BWD_BR;
    const int total = group * nsteps;

    if (threadIdx.x == 0) {
        for (int s = 0; s < BWD_STAGES; s++) {
            mbar_init(full_bar + 8 * s, 64);
            mbar_init(empty_bar + 8 * s, 8);
        }
        fence_barrier_init();
    }
    if (threadIdx.x < 256) {
        load_tile<128>(Ks, k, j0, t, hkv, g);
        load_tile<128>(Vs, v, j0, t, hkv, g);
        cp_async_commit();
        cp_async_wait_all();
        fence_proxy_async();
    }
    __syncthreads();  // K, V and the mbarriers

    if (threadIdx.x >= 256) {  // the producer
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
        const int p = threadIdx.x - 256;
        const float log2_scale = log2f(scale);
        int h = g * group, i0 = j0, doc = 0;
        // per step, once its stage is free: the producer's first 64 threads write the step's rows and arrive on its
        // full barrier; thread 0 also adds the tiles' bytes to it and has the copy engine (TMA) fetch Q and dO, two
        // 64-dim halves each, so the barrier completes once rows and tiles are in. Its other two warps have no work.
        // TMA instead of 16 cp.async per thread and their wait: 507 → 522 TF/s at 128K
        // (bench/results/sm90-bwd-tma-2026-12-02)
        if (p >= 64) return;
        for (int step = 0; step < total; step++) {
            const int s = step % BWD_STAGES;
            if (step >= BWD_STAGES) mbar_wait(empty_bar + 8 * s, (step / BWD_STAGES - 1) & 1);
            const unsigned qs = stages + s * BWD_STAGE_BYTES, bar = full_bar + 8 * s;
            const int i = i0 + p;
            float* r = rows + s * 192;
            if (i < t) {
                if (i0 == j0) doc = doc_of(cu, num_seqs, i);  // a new head starts over
                else while (doc + 1 < num_seqs && __ldg(cu + doc + 1) <= i) doc++;
                r[p] = fmaf(__ldg(lse + (long long) h * t + i), FA90_LOG2E, -log2_scale);
                r[64 + p] = __ldg(delta + (long long) h * t + i);
                reinterpret_cast<int*>(r)[128 + p] = __ldg(cu + doc);
            } else {
                r[p] = 0.f;
                r[64 + p] = 0.f;
                reinterpret_cast<int*>(r)[128 + p] = FA90_BIG;
            }
            if (p == 0) {
                mbar_arrive_expect_tx(bar, BWD_STAGE_BYTES);
                tma_load_3d(qs, q_map, 0, h, i0, bar);
                tma_load_3d(qs + QTILE_BYTES / 2, q_map, 64, h, i0, bar);
                tma_load_3d(qs + QTILE_BYTES, do_map, 0, h, i0, bar);
                tma_load_3d(qs + QTILE_BYTES + QTILE_BYTES / 2, do_map, 64, h, i0, bar);
            } else {
                mbar_arrive(bar);
            }
            i0 += BWD_BR;
            if (i0 >= j0 + nsteps * BWD_BR) {
                i0 = j0;
                h++;
            }
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int gr = lane >> 2, tc = (lane & 3) * 2;
    const float sl2 = scale * FA90_LOG2E;
    const int lk0 = wg * 64 + warp * 16 + gr;  // this thread's keys: lk0 and lk0 + 8 of the block
    const int key0 = j0 + lk0, key1 = key0 + 8;
    float* dq_stage = reinterpret_cast<float*>(base_ptr + (dqs - base));

    float dka[64], dva[64];
#pragma unroll
    for (int i = 0; i < 64; i++) dka[i] = dva[i] = 0.f;

    int h = g * group, i0 = j0;
    for (int step = 0; step < total; step++) {
        const int s = step % BWD_STAGES;
        const unsigned dSt = dSb + (step & 1) * (BWD_BC * 128);
        unsigned char* dst_ptr = base_ptr + (dSt - base);
        mbar_wait(full_bar + 8 * s, (step / BWD_STAGES) & 1);
        const unsigned qs = stages + s * BWD_STAGE_BYTES, dos = qs + QTILE_BYTES;
        const float* lse_s = rows + s * 192;
        const float* delta_s = lse_s + 64;
        const int* ds_s = reinterpret_cast<const int*>(lse_s + 128);
        unsigned pa[4][4], da[4][4];
        {
            float st[32], dpt[32];
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const unsigned ka = (kk >> 2) * HALF_BYTES + wg * 64 * 128 + (kk & 3) * 32;
                const unsigned qa = (kk >> 2) * (QTILE_BYTES / 2) + (kk & 3) * 32;
                Wgmma64<Tag>::template ss<0, 0>(st, descriptor(Ks + ka, 16, 1024), descriptor(qs + qa, 16, 1024), kk > 0);
            }
            wgmma_commit();
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const unsigned ka = (kk >> 2) * HALF_BYTES + wg * 64 * 128 + (kk & 3) * 32;
                const unsigned qa = (kk >> 2) * (QTILE_BYTES / 2) + (kk & 3) * 32;
                Wgmma64<Tag>::template ss<0, 0>(dpt, descriptor(Vs + ka, 16, 1024), descriptor(dos + qa, 16, 1024), kk > 0);
            }
            wgmma_commit();
            wgmma_wait<1>();
            pin32(st);
#pragma unroll
            for (int n = 0; n < 8; n++) {
                const float2 l2 = *reinterpret_cast<const float2*>(lse_s + n * 8 + tc);
                st[4 * n] = ex2(fmaf(st[4 * n], sl2, -l2.x));
                st[4 * n + 1] = ex2(fmaf(st[4 * n + 1], sl2, -l2.y));
                st[4 * n + 2] = ex2(fmaf(st[4 * n + 2], sl2, -l2.x));
                st[4 * n + 3] = ex2(fmaf(st[4 * n + 3], sl2, -l2.y));
            }
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
        }
#pragma unroll
        for (int n = 0; n < 8; n++) {
            const unsigned off = (((unsigned) n ^ (lk0 & 7)) << 4) + tc * 2;
            *reinterpret_cast<unsigned*>(dst_ptr + lk0 * 128 + off) = da[n >> 1][(n & 1) * 2];
            *reinterpret_cast<unsigned*>(dst_ptr + (lk0 + 8) * 128 + off) = da[n >> 1][(n & 1) * 2 + 1];
        }
        fence_proxy_async();
        // the one barrier of the step: both warpgroups' dSᵀ are in the tile, the dQ of the step before last has read
        // this tile, and (its issuing thread waits first) the staged dQ of the last step has left for dq_accum
        if ((threadIdx.x & 127) == 0) bulk_wait_read();
        mma_barrier();
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
        wgmma_wait<1>();  // dQ (and dV) done; dK may still run
        pin32(dqa);
        if (i0 + BWD_BR <= t) {
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
        } else {
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
        wgmma_wait_all();  // dK: this warp is done with the stage
        pin(dka);
        __syncwarp();
        if (lane == 0) mbar_arrive(empty_bar + 8 * s);
        i0 += BWD_BR;
        if (i0 >= j0 + nsteps * BWD_BR) {
            i0 = j0;
            h++;
        }
    }
    wgmma_wait_all();
    pin(dka);
    pin(dva);
    bulk_wait_all();
    fa_rows::add_key_gradients<Tag, D>(dk, dv, dka, dva, key0, tc, t, hkv, g, scale);
}
#endif  // sm_90a

}  // namespace fa90

#ifdef FA90_ENABLED
#define FA90_BODY(call) call;
#else
// the stub other targets get: a trap the KernelArchitectureTest tells from check_launch's by this comment
#define FA90_BODY(call) asm volatile("trap; // not built for sm_90a\n");
#endif

#define FA90_ENTRY(SUF, TAG, CARRIER)                                                                              \
    extern "C" __global__ void __launch_bounds__(384, 1) flash_attention_forward_sm90_##SUF##_d128(    \
        unsigned short* out, float* lse, const unsigned short* q, const unsigned short* k, const unsigned short* v, \
        const int* cu_seqlens, int num_seqs, int t, int hq, int hkv, float softmax_scale,                          \
        const __grid_constant__ fa90::TensorMap k_map, const __grid_constant__ fa90::TensorMap v_map) {            \
        FA90_BODY((fa90::forward<TAG>(out, lse, q, k, v, cu_seqlens, num_seqs, t, hq, hkv, softmax_scale, k_map, v_map))) \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(384, 1) flash_attention_backward_sm90_##SUF##_d128(                \
        float* dq_accum, unsigned short* dk, unsigned short* dv, const unsigned short* q, const unsigned short* k,  \
        const unsigned short* v, const unsigned short* dout, const float* lse, const float* delta,                 \
        const int* cu_seqlens, int num_seqs, int t, int hq, int hkv, float softmax_scale,                          \
        const __grid_constant__ fa90::TensorMap q_map, const __grid_constant__ fa90::TensorMap do_map) {           \
        FA90_BODY((fa90::backward<TAG>(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu_seqlens, num_seqs, t, hq,  \
                                       hkv, softmax_scale, q_map, do_map)))                                        \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) flash_attention_dq_finish_sm90_##SUF##_d128(                  \
        CARRIER* dq, const float* dq_accum, int t, int hq) {                                                       \
        FA90_BODY((fa90::dq_finish<TAG>(dq, dq_accum, t, hq)))                                                     \
    }
FA90_ENTRY(bf16, bf16_t, bf16_t)
FA90_ENTRY(f16, f16_tag, f16_t)
