package dev.longtune.cuda;

import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import static dev.longtune.tensor.MemoryCategory.WORKSPACE;

/**
 * Launches kernels/cuda/flash_attention.cu (FlashAttention-2: tiles of queries against tiles of keys with an
 * online softmax, only the log-sum-exp kept for backward); on Hopper, head dim 128 runs
 * kernels/cuda/flash_attention_sm90.cu (wgmma) with the same arguments and two TMA tensor maps after them (K and V in
 * the forward, Q and dO in the backward). Launch shapes follow kernels/cuda/flash_attention*.md.
 */
final class CudaAttention {
    private CudaAttention() {}

    static void checkHeadDim(int d) {
        if (d != 64 && d != 128) {
            throw new IllegalArgumentException("the CUDA FlashAttention kernels take head dim 64 or 128, not " + d);
        }
    }

    private static String name(String op, DType e, int d) {
        return "flash_attention_" + op + "_" + CudaDevice.suffix(e) + "_d" + d;
    }

    static void forward(CudaDevice dev, Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor cu, int seqs,
                        int t, int hq, int hkv, int d) {
        checkHeadDim(d);
        boolean hopper = dev.kernels().hopperAttention() && d == 128 && q.dtype() != DType.FP32;
        FlashAttentionLaunch l = hopper ? FlashAttentionLaunch.hopperForward()
                : FlashAttentionLaunch.forward(q.dtype(), d, dev.kernels().attentionPath());
        String kernel = hopper ? "flash_attention_forward_sm90_" + CudaDevice.suffix(q.dtype()) + "_d128"
                : name("forward", q.dtype(), d);
        l.prepare(dev.kernels(), kernel);
        if (hopper) { // K and V come in by TMA: 64 dims × 128 rows of one head a box
            dev.launchKernel(kernel, (t + l.tile() - 1) / l.tile(), hq, l.threads(), l.sharedBytes(),
                    out, lse, q, k, v, cu, seqs, t, hq, hkv, (float) (1.0 / Math.sqrt(d)),
                    TensorMap.rowsOfHeads16("k", k.address(), t, hkv, d, 64, 128),
                    TensorMap.rowsOfHeads16("v", v.address(), t, hkv, d, 64, 128));
        } else {
            dev.launchKernel(kernel, (t + l.tile() - 1) / l.tile(), hq, l.threads(), l.sharedBytes(),
                    out, lse, q, k, v, cu, seqs, t, hq, hkv, (float) (1.0 / Math.sqrt(d)));
        }
    }

    static void backward(CudaDevice dev, Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                         Tensor out, Tensor lse, Tensor cu, int seqs, int t, int hq, int hkv, int d) {
        checkHeadDim(d);
        DType e = q.dtype();
        float scale = (float) (1.0 / Math.sqrt(d));
        try (Tensor delta = dev.allocate("attention delta", DType.FP32, WORKSPACE, hq, t);
             Tensor dqAccum = dev.allocate("attention dq accumulator", DType.FP32, WORKSPACE, t, hq, d)) {
            dev.launchKernel(name("backward_preprocess", e, d), (int) (((long) t * hq + 7) / 8), 1, 256, 0,
                    delta, out, dout, t, hq);
            boolean hopper = dev.kernels().hopperAttention() && d == 128 && e != DType.FP32;
            FlashAttentionLaunch l = hopper ? FlashAttentionLaunch.hopperBackward()
                    : FlashAttentionLaunch.backward(e, d, dev.kernels().attentionPath());
            String kernel = hopper ? "flash_attention_backward_sm90_" + CudaDevice.suffix(e) + "_d128" : name("backward", e, d);
            l.prepare(dev.kernels(), kernel);
            if (hopper) { // Q and dO come in by TMA: 64 dims × 64 rows of one head a box
                dev.launchKernel(kernel, (t + l.tile() - 1) / l.tile(), hkv, l.threads(), l.sharedBytes(),
                        dqAccum, dk, dv, q, k, v, dout, lse, delta, cu, seqs, t, hq, hkv, scale,
                        TensorMap.rowsOfHeads16("q", q.address(), t, hq, d, 64, 64),
                        TensorMap.rowsOfHeads16("dout", dout.address(), t, hq, d, 64, 64));
            } else {
                dev.launchKernel(kernel, (t + l.tile() - 1) / l.tile(), hkv, l.threads(), l.sharedBytes(),
                        dqAccum, dk, dv, q, k, v, dout, lse, delta, cu, seqs, t, hq, hkv, scale);
            }
            if (hopper) { // its dq_accum is laid out by 64-query tiles (flash_attention_sm90.md): its own finish
                long threads = (long) t * hq * (d / 8);
                dev.launchKernel("flash_attention_dq_finish_sm90_" + CudaDevice.suffix(e) + "_d128",
                        (int) Math.min((threads + 255) / 256, 65535), 1, 256, 0, dq, dqAccum, t, hq);
            } else {
                long n = (long) t * hq * d;
                dev.launchKernel("flash_attention_dq_finish_" + CudaDevice.suffix(e),
                        (int) Math.min((n + 255) / 256, 65535), 1, 256, 0, dq, dqAccum, n);
            }
        }
    }
}
