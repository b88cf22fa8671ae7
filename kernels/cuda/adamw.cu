// AdamW for the CUDA device: dev.longtune.ops.AdamW.step bit for bit (decoupled weight decay, fp32 state).
// The hyperparameters arrive as DOUBLES, as the Java op takes them, with the two bias corrections computed by
// the host in double: bias_correction1 = 1 − β1^t, bias_correction2 = 1 − β2^t (Math.pow). Each thread rounds
// the coefficients once to float exactly as AdamW.java does:
//   decay = (float) (1 − lr·λ), b1 = (float) β1, 1 − b1 = (float) (1 − β1), likewise β2,
//   step = (float) (lr / bias_correction1), sqrt_c2 = (float) sqrt(bias_correction2), eps = (float) eps
// then per element, in fp32 without fused multiply-adds:
//   m = b1·m + (1 − b1)·g;  v = b2·v + ((1 − b2)·g)·g;  θ = θ·decay − step · (m / (sqrt(v) / sqrt_c2 + eps))
// adamw_step takes fp32 gradients; adamw_step_{f32,bf16,f16} take the gradient in that storage type (the
// parameters, m and v stay fp32). Unscaling by a loss scale is the caller's (scale_{s} before the step), or:
// adamw_step_scaled_{f32,bf16,f16}(…, unscale, clip, weights, weights_kind) is the optimizer's whole update of a
// tensor in one pass, bit for bit what copying the gradient to fp32, scale_f32 by unscale, scale_f32 by clip (when
// clip ≠ 1), adamw_step and cast_f32_to_{bf16,f16} of the parameters into weights do one after the other:
// g = (g·unscale)·clip, each product rounded to float; then the update; then weights[i] = param[i] rounded to
// weights_kind (0: no weights, 1: bf16, 2: f16, 3: fp32 in other memory). It reads 2–4 bytes of gradient and moves 24 of state per element
// instead of 60 through an fp32 copy of the gradient.
// Launch: blockDim.x = 256, grid = ceil(n / 1024) (a thread takes four elements a step where the pointers allow;
// any grid is correct: grid-stride), no dynamic shared memory.
#include "common.cuh"

// The coefficients, rounded to float once per thread as AdamW.java rounds them, and one element's update.
struct AdamWCoefficients {
    float decay, b1, one_minus_b1, b2, one_minus_b2, step_size, sqrt_correction2, epsilon, unscale, clip;
    __device__ AdamWCoefficients(double lr, double beta1, double beta2, double eps, double weight_decay,
                                 double bias_correction1, double bias_correction2, float unscale_, float clip_)
        : decay((float) (1.0 - lr * weight_decay)), b1((float) beta1), one_minus_b1((float) (1.0 - beta1)),
          b2((float) beta2), one_minus_b2((float) (1.0 - beta2)), step_size((float) (lr / bias_correction1)),
          sqrt_correction2((float) sqrt(bias_correction2)), epsilon((float) eps), unscale(unscale_), clip(clip_) {}

    // g: the stored gradient as float; m, v, p updated in place
    __device__ __forceinline__ void update(float g, float& p, float& m, float& v) const {
        g = __fmul_rn(g, unscale);
        if (clip != 1.f) g = __fmul_rn(g, clip);
        m = __fadd_rn(__fmul_rn(b1, m), __fmul_rn(one_minus_b1, g));
        v = __fadd_rn(__fmul_rn(b2, v), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
        const float denominator = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), sqrt_correction2), epsilon);
        p = __fsub_rn(__fmul_rn(p, decay), __fmul_rn(step_size, __fdiv_rn(m, denominator)));
    }
};

__device__ __forceinline__ void store_weight(void* weights, int kind, long long i, float p) {
    if (kind == 1) Storage<bf16_t>::store(static_cast<bf16_t*>(weights), i, p);
    else if (kind == 2) Storage<f16_tag>::store(static_cast<f16_t*>(weights), i, p);
    else if (kind == 3) static_cast<float*>(weights)[i] = p;
}

// four consecutive gradient elements from one 16-byte (fp32) or 8-byte (16-bit) load
template <typename T> struct Grad4;
template <> struct Grad4<float> {
    static __device__ __forceinline__ void load(const float* g, long long q, float (&x)[4]) {
        const float4 r = reinterpret_cast<const float4*>(g)[q];
        x[0] = r.x; x[1] = r.y; x[2] = r.z; x[3] = r.w;
    }
};
template <typename T> struct Grad4 {  // bf16_t and f16_tag: four 16-bit values
    static __device__ __forceinline__ void load(const typename Carrier<T>::type* g, long long q, float (&x)[4]) {
        const uint2 r = reinterpret_cast<const uint2*>(g)[q];
        const typename Carrier<T>::type h[4] = {(unsigned short) (r.x & 0xffff), (unsigned short) (r.x >> 16),
                                                (unsigned short) (r.y & 0xffff), (unsigned short) (r.y >> 16)};
        for (int e = 0; e < 4; e++) x[e] = Storage<T>::load(h, e);
    }
};

// param, grad, m, v (n) — param, m, v updated in place (and weights, if weights_kind ≠ 0). Where every pointer
// allows it, four elements per thread and step through 16-byte loads of param, m, v (8-byte of a 16-bit gradient
// and of the weights): the scalar loop moved about half of HBM's bandwidth (too few bytes in flight per thread).
// The arithmetic per element is the same either way, so the bits are.
template <typename T>
__device__ void adamw_step_impl(float* param, const typename Carrier<T>::type* grad, float* m, float* v, long long n,
                                double lr, double beta1, double beta2, double eps, double weight_decay,
                                double bias_correction1, double bias_correction2, float unscale = 1.f,
                                float clip = 1.f, void* weights = nullptr, int weights_kind = 0) {
    const AdamWCoefficients c(lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, unscale, clip);
    const long long tid = (long long) blockIdx.x * blockDim.x + threadIdx.x, stride = (long long) gridDim.x * blockDim.x;
    const bool vector = aligned16(param) && aligned16(m) && aligned16(v)
                        && ((unsigned long long) grad & (4 * sizeof(*grad) - 1)) == 0
                        && (weights_kind == 0 || ((unsigned long long) weights & (weights_kind == 3 ? 15 : 7)) == 0);
    long long done = 0;
    if (vector) {
        const long long quads = n / 4;
        for (long long q = tid; q < quads; q += stride) {
            float g[4];
            Grad4<T>::load(grad, q, g);
            float4 p4 = reinterpret_cast<float4*>(param)[q], m4 = reinterpret_cast<float4*>(m)[q],
                   v4 = reinterpret_cast<float4*>(v)[q];
            c.update(g[0], p4.x, m4.x, v4.x);
            c.update(g[1], p4.y, m4.y, v4.y);
            c.update(g[2], p4.z, m4.z, v4.z);
            c.update(g[3], p4.w, m4.w, v4.w);
            reinterpret_cast<float4*>(param)[q] = p4;
            reinterpret_cast<float4*>(m)[q] = m4;
            reinterpret_cast<float4*>(v)[q] = v4;
            if (weights_kind == 1) {
                reinterpret_cast<uint2*>(weights)[q] = make_uint2(
                    float_to_bf16(p4.x) | ((unsigned) float_to_bf16(p4.y) << 16),
                    float_to_bf16(p4.z) | ((unsigned) float_to_bf16(p4.w) << 16));
            } else if (weights_kind == 2) {
                reinterpret_cast<uint2*>(weights)[q] = make_uint2(
                    float_to_f16(p4.x) | ((unsigned) float_to_f16(p4.y) << 16),
                    float_to_f16(p4.z) | ((unsigned) float_to_f16(p4.w) << 16));
            } else if (weights_kind == 3) {
                reinterpret_cast<float4*>(weights)[q] = p4;
            }
        }
        done = quads * 4;
    }
    for (long long i = done + tid; i < n; i += stride) {
        float p = param[i], mi = m[i], vi = v[i];
        c.update(Storage<T>::load(grad, i), p, mi, vi);
        m[i] = mi;
        v[i] = vi;
        param[i] = p;
        store_weight(weights, weights_kind, i, p);
    }
}

extern "C" __global__ void adamw_step(float* param, const float* grad, float* m, float* v, long long n, double lr,
                                      double beta1, double beta2, double eps, double weight_decay,
                                      double bias_correction1, double bias_correction2) {
    adamw_step_impl<float>(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bias_correction1,
                           bias_correction2);
}

#define ADAMW_KERNELS(S, T, C)                                                                                      \
    extern "C" __global__ void adamw_step_##S(float* param, const C* grad, float* m, float* v, long long n,        \
                                              double lr, double beta1, double beta2, double eps,                   \
                                              double weight_decay, double bias_correction1,                        \
                                              double bias_correction2) {                                           \
        adamw_step_impl<T>(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bias_correction1,           \
                           bias_correction2);                                                                      \
    }

DEFINE_FOR_ALL_TYPES(ADAMW_KERNELS)

#define ADAMW_SCALED_KERNELS(S, T, C)                                                                               \
    extern "C" __global__ void adamw_step_scaled_##S(float* param, const C* grad, float* m, float* v, long long n, \
                                                     double lr, double beta1, double beta2, double eps,            \
                                                     double weight_decay, double bias_correction1,                 \
                                                     double bias_correction2, float unscale, float clip,           \
                                                     void* weights, int weights_kind) {                            \
        adamw_step_impl<T>(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bias_correction1,           \
                           bias_correction2, unscale, clip, weights, weights_kind);                                \
    }

DEFINE_FOR_ALL_TYPES(ADAMW_SCALED_KERNELS)
