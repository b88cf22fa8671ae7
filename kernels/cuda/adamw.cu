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
// weights_kind (0: no weights, 1: bf16, 2: f16). It reads 2–4 bytes of gradient and moves 24 of state per element
// instead of 60 through an fp32 copy of the gradient.
// Launch: blockDim.x = 256, grid = ceil(n / 256) (any grid is correct: grid-stride), no dynamic shared memory.
#include "common.cuh"

// param, grad, m, v (n) — param, m, v updated in place
template <typename T>
__device__ void adamw_step_impl(float* param, const typename Carrier<T>::type* grad, float* m, float* v, long long n,
                                double lr, double beta1, double beta2, double eps, double weight_decay,
                                double bias_correction1, double bias_correction2, float unscale = 1.f,
                                float clip = 1.f, void* weights = nullptr, int weights_kind = 0) {
    const float decay = (float) (1.0 - lr * weight_decay);
    const float b1 = (float) beta1, one_minus_b1 = (float) (1.0 - beta1);
    const float b2 = (float) beta2, one_minus_b2 = (float) (1.0 - beta2);
    const float step_size = (float) (lr / bias_correction1);
    const float sqrt_correction2 = (float) sqrt(bias_correction2);
    const float epsilon = (float) eps;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float g = __fmul_rn(Storage<T>::load(grad, i), unscale);
        if (clip != 1.f) g = __fmul_rn(g, clip);
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_minus_b1, g));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denominator = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), sqrt_correction2), epsilon);
        const float p = __fsub_rn(__fmul_rn(param[i], decay), __fmul_rn(step_size, __fdiv_rn(mi, denominator)));
        param[i] = p;
        if (weights_kind == 1) Storage<bf16_t>::store(static_cast<bf16_t*>(weights), i, p);
        else if (weights_kind == 2) Storage<f16_tag>::store(static_cast<f16_t*>(weights), i, p);
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
