// AdamW for the CUDA device: dev.longtune.ops.AdamW.step bit for bit (decoupled weight decay, fp32 state).
// The hyperparameters arrive as DOUBLES, as the Java op takes them, with the two bias corrections computed by
// the host in double: bias_correction1 = 1 − β1^t, bias_correction2 = 1 − β2^t (Math.pow). Each thread rounds
// the coefficients once to float exactly as AdamW.java does:
//   decay = (float) (1 − lr·λ), b1 = (float) β1, 1 − b1 = (float) (1 − β1), likewise β2,
//   step = (float) (lr / bias_correction1), sqrt_c2 = (float) sqrt(bias_correction2), eps = (float) eps
// then per element, in fp32 without fused multiply-adds:
//   m = b1·m + (1 − b1)·g;  v = b2·v + ((1 − b2)·g)·g;  θ = θ·decay − step · (m / (sqrt(v) / sqrt_c2 + eps))
// adamw_step takes fp32 gradients; adamw_step_{f32,bf16,f16} take the gradient in that storage type (the
// parameters, m and v stay fp32). Unscaling by a loss scale is the caller's (scale_{s} before the step).
// Launch: blockDim.x = 256, grid = ceil(n / 256) (any grid is correct: grid-stride), no dynamic shared memory.
#include "common.cuh"

// param, grad, m, v (n) — param, m, v updated in place
template <typename T>
__device__ void adamw_step_impl(float* param, const typename Carrier<T>::type* grad, float* m, float* v, long long n,
                                double lr, double beta1, double beta2, double eps, double weight_decay,
                                double bias_correction1, double bias_correction2) {
    const float decay = (float) (1.0 - lr * weight_decay);
    const float b1 = (float) beta1, one_minus_b1 = (float) (1.0 - beta1);
    const float b2 = (float) beta2, one_minus_b2 = (float) (1.0 - beta2);
    const float step_size = (float) (lr / bias_correction1);
    const float sqrt_correction2 = (float) sqrt(bias_correction2);
    const float epsilon = (float) eps;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float g = Storage<T>::load(grad, i);
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_minus_b1, g));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denominator = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), sqrt_correction2), epsilon);
        param[i] = __fsub_rn(__fmul_rn(param[i], decay), __fmul_rn(step_size, __fdiv_rn(mi, denominator)));
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
