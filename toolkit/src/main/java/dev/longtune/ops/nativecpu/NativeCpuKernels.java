package dev.longtune.ops.nativecpu;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.ShortPointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.CriticalRegion;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.NoException;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of the fused CPU kernels in {@code kernels/cpu} (C++, OpenMP). The javacpp Maven plugin
 * generates the JNI code for this class at {@code process-classes} and compiles it, with the kernel headers,
 * into {@code dev/longtune/ops/nativecpu/linux-x86_64/libjniNativeCpuKernels.so} under
 * {@code target/classes}, so the library travels inside the toolkit jar.
 *
 * <p>Raw and unchecked: lengths are not verified here, a wrong length reads or writes out of bounds. Use
 * {@link NativeCpuOps}, which checks them and reports whether the library loaded.
 *
 * <p>The {@code float[]} overloads pin the Java arrays ({@code GetPrimitiveArrayCritical}, no copy) for the
 * duration of the call; the {@link FloatPointer} overloads work on off-heap memory.
 */
@Platform(value = "linux-x86_64", include = {"simd_dispatch.h", "rms_norm.h", "swiglu.h", "adamw.h", "sum_squares.h",
        "scaled_gradients.h", "rope.h", "flash_attention.h", "embedding.h", "cross_entropy.h", "memory_bandwidth.h", "longtune_cpu.h"},
        link = "gomp")
public final class NativeCpuKernels {
    static {
        Loader.load();
    }

    private NativeCpuKernels() {}

    /** OpenMP's thread count for a parallel region ({@code omp_get_max_threads()}). */
    @Name("longtune_cpu_max_threads") @NoException
    public static native int maxThreads();

    /**
     * Sets OpenMP's thread count for later parallel regions started from the calling Java thread
     * ({@code omp_set_num_threads}, which only changes that thread's setting); tests use it to check that a
     * result does not depend on the number of threads.
     */
    @Name("longtune_cpu_set_threads") @NoException
    public static native void setThreads(int threads);

    // ---- RMSNorm: inp (N, C), weight (C), out (N, C), rstd (N); backward adds into dinp, dweight (nullable)

    @Name("longtune_rms_norm_forward") @NoException @CriticalRegion
    public static native void rmsNormForward(float[] out, float[] rstd, @Const float[] inp, @Const float[] weight,
                                             int N, int C, float eps);

    @Name("longtune_rms_norm_backward") @NoException @CriticalRegion
    public static native void rmsNormBackward(float[] dinp, float[] dweight, @Const float[] dout,
                                              @Const float[] inp, @Const float[] weight, @Const float[] rstd,
                                              int N, int C);

    @Name("longtune_rms_norm_forward") @NoException
    public static native void rmsNormForward(FloatPointer out, FloatPointer rstd, @Const FloatPointer inp,
                                             @Const FloatPointer weight, int N, int C, float eps);

    @Name("longtune_rms_norm_backward") @NoException
    public static native void rmsNormBackward(FloatPointer dinp, FloatPointer dweight, @Const FloatPointer dout,
                                              @Const FloatPointer inp, @Const FloatPointer weight,
                                              @Const FloatPointer rstd, int N, int C);

    // ---- SwiGLU: gate (N, F), up (N, F), out (N, F); backward adds into dgate, dup (nullable)

    @Name("longtune_swiglu_forward") @NoException @CriticalRegion
    public static native void swiGluForward(float[] out, @Const float[] gate, @Const float[] up, int N, int F);

    @Name("longtune_swiglu_backward") @NoException @CriticalRegion
    public static native void swiGluBackward(float[] dgate, float[] dup, @Const float[] dout, @Const float[] gate,
                                             @Const float[] up, int N, int F);

    @Name("longtune_swiglu_forward") @NoException
    public static native void swiGluForward(FloatPointer out, @Const FloatPointer gate, @Const FloatPointer up,
                                            int N, int F);

    @Name("longtune_swiglu_backward") @NoException
    public static native void swiGluBackward(FloatPointer dgate, FloatPointer dup, @Const FloatPointer dout,
                                             @Const FloatPointer gate, @Const FloatPointer up, int N, int F);

    // ---- AdamW: params, grads, m, v (P) each; updates [offset, offset + length), t counts steps from 1

    @Name("longtune_adamw_step") @NoException @CriticalRegion
    public static native void adamWStep(float[] params, @Const float[] grads, float[] m, float[] v, int offset,
                                        int length, double lr, double beta1, double beta2, double eps,
                                        double weightDecay, int t);

    @Name("longtune_adamw_step") @NoException
    public static native void adamWStep(FloatPointer params, @Const FloatPointer grads, FloatPointer m,
                                        FloatPointer v, int offset, int length, double lr, double beta1,
                                        double beta2, double eps, double weightDecay, int t);

    // ---- AdamW over a range with a gradient scale and an optional 16-bit copy of the new weights (adamw.h):
    //      params, grads, m, v, out hold [offset, offset + n); outKind LONGTUNE_ADAMW_OUT_* (0 none, 1 bf16 bits,
    //      2 fp16 bits, 3 bf16-rounded floats, 4 fp16-rounded floats)

    @Name("longtune_adamw_step_range") @NoException @CriticalRegion
    public static native void adamWStepRange(float[] params, @Const float[] grads, float[] m, float[] v,
                                             @Cast("void*") short[] out, int outKind, long offset, long n,
                                             float gradScale, double lr, double beta1, double beta2, double eps,
                                             double weightDecay, int t);

    @Name("longtune_adamw_step_range") @NoException @CriticalRegion
    public static native void adamWStepRange(float[] params, @Const float[] grads, float[] m, float[] v,
                                             @Cast("void*") float[] out, int outKind, long offset, long n,
                                             float gradScale, double lr, double beta1, double beta2, double eps,
                                             double weightDecay, int t);

    @Name("longtune_adamw_step_range") @NoException @CriticalRegion
    public static native void adamWStepRange(float[] params, @Const float[] grads, float[] m, float[] v,
                                             @Cast("void*") ShortPointer out, int outKind, long offset, long n,
                                             float gradScale, double lr, double beta1, double beta2, double eps,
                                             double weightDecay, int t);

    @Name("longtune_adamw_step_range") @NoException
    public static native void adamWStepRange(FloatPointer params, @Const FloatPointer grads, FloatPointer m,
                                             FloatPointer v, @Cast("void*") ShortPointer out, int outKind,
                                             long offset, long n, float gradScale, double lr, double beta1,
                                             double beta2, double eps, double weightDecay, int t);

    // ---- Σ (x·scale)² in chunks of 16,384 (sum_squares.h), x scaled in place when scale != 1;
    //      firstNonFinite[0] = index of the first inf/NaN from offset, or -1

    @Name("longtune_sum_squares") @NoException @CriticalRegion
    public static native double sumSquares(float[] x, long offset, long n, float scale,
                                           @Cast("int64_t*") long[] firstNonFinite);

    @Name("longtune_sum_squares") @NoException
    public static native double sumSquares(FloatPointer x, long offset, long n, float scale,
                                           @Cast("int64_t*") LongPointer firstNonFinite);

    // ---- the host optimizer on gradients where backward left them (scaled_gradients.h): x read as floats (0), bf16
    //      bits (1) or fp16 bits (2), times unscale, without writing x; AdamW reads g = (x·unscale)·gradScale

    @Name("longtune_sum_squares_scaled") @NoException @CriticalRegion
    public static native double sumSquaresScaled(@Cast("const void*") float[] x, int kind, long n, float unscale,
                                                 @Cast("int64_t*") long[] firstNonFinite);

    @Name("longtune_sum_squares_scaled") @NoException
    public static native double sumSquaresScaled(@Cast("const void*") ShortPointer x, int kind, long n, float unscale,
                                                 @Cast("int64_t*") LongPointer firstNonFinite);

    @Name("longtune_adamw_step_scaled") @NoException @CriticalRegion
    public static native void adamWStepScaled(float[] params, @Cast("const void*") float[] grads, int gradKind,
                                              float unscale, float[] m, float[] v, @Cast("void*") float[] out,
                                              int outKind, long n, float gradScale, double lr, double beta1,
                                              double beta2, double eps, double weightDecay, int t);

    @Name("longtune_adamw_step_scaled") @NoException @CriticalRegion
    public static native void adamWStepScaled(float[] params, @Cast("const void*") ShortPointer grads, int gradKind,
                                              float unscale, float[] m, float[] v, @Cast("void*") ShortPointer out,
                                              int outKind, long n, float gradScale, double lr, double beta1,
                                              double beta2, double eps, double weightDecay, int t);

    // ---- SIMD level of adamw.h and sum_squares.h (simd_dispatch.h): 0 SSE2, 1 AVX2+F16C, 2 AVX-512F

    @Name("longtune_cpu_simd_level") @NoException
    public static native int simdLevel();

    @Name("longtune_cpu_simd_supported") @NoException
    public static native int simdSupported();

    /** Process-wide, capped at what the CPU runs; returns the level set. */
    @Name("longtune_cpu_set_simd_level") @NoException
    public static native int setSimdLevel(int level);

    // ---- benchmark support (memory_bandwidth.h): STREAM triad a = b + s·c with non-temporal stores, fills

    @Name("longtune_stream_triad") @NoException
    public static native void streamTriad(DoublePointer a, @Const DoublePointer b, @Const DoublePointer c, long n,
                                          double s);

    @Name("longtune_fill_uniform") @NoException
    public static native void fillUniform(FloatPointer x, long n, long seed, float lo, float hi);

    @Name("longtune_fill_zero") @NoException
    public static native void fillZero(@Cast("void*") ShortPointer x, long bytes);

    @Name("longtune_fill_zero") @NoException
    public static native void fillZero(@Cast("void*") DoublePointer x, long bytes);

    @Name("longtune_fill_zero") @NoException
    public static native void fillZero(@Cast("void*") FloatPointer x, long bytes);

    // ---- RoPE, in place: q (T, Hq, D), k (T, Hkv, D) nullable, positions (T), invFreq (D/2)

    @Name("longtune_rope_forward") @NoException @CriticalRegion
    public static native void ropeForward(float[] q, float[] k, @Const int[] positions, @Const double[] invFreq,
                                          int T, int Hq, int Hkv, int D);

    @Name("longtune_rope_backward") @NoException @CriticalRegion
    public static native void ropeBackward(float[] dq, float[] dk, @Const int[] positions, @Const double[] invFreq,
                                           int T, int Hq, int Hkv, int D);

    @Name("longtune_rope_forward") @NoException
    public static native void ropeForward(FloatPointer q, FloatPointer k, @Const IntPointer positions,
                                          @Const DoublePointer invFreq, int T, int Hq, int Hkv, int D);

    @Name("longtune_rope_backward") @NoException
    public static native void ropeBackward(FloatPointer dq, FloatPointer dk, @Const IntPointer positions,
                                           @Const DoublePointer invFreq, int T, int Hq, int Hkv, int D);

    // ---- FlashAttention-2: q, out (T, Hq, D), k, v (T, Hkv, D), lse (Hq, T), cuSeqlens (docs + 1);
    //      forward overwrites out and lse, backward adds into dq, dk, dv; Br x Bc tiles

    @Name("longtune_flash_attention_forward") @NoException @CriticalRegion
    public static native void flashAttentionForward(float[] out, float[] lse, @Const float[] q, @Const float[] k,
                                                    @Const float[] v, @Const int[] cuSeqlens, int docs, int T,
                                                    int Hq, int Hkv, int D, int br, int bc);

    @Name("longtune_flash_attention_backward") @NoException @CriticalRegion
    public static native void flashAttentionBackward(float[] dq, float[] dk, float[] dv, @Const float[] dout,
                                                     @Const float[] q, @Const float[] k, @Const float[] v,
                                                     @Const float[] out, @Const float[] lse, @Const int[] cuSeqlens,
                                                     int docs, int T, int Hq, int Hkv, int D, int br, int bc);

    // ---- Embedding: ids (T) in [0, V), table (V, C), out (T, C); backward adds into dtable

    @Name("longtune_embedding_forward") @NoException @CriticalRegion
    public static native void embeddingForward(float[] out, @Const int[] ids, @Const float[] table, int T, int C);

    @Name("longtune_embedding_backward") @NoException @CriticalRegion
    public static native void embeddingBackward(float[] dtable, @Const float[] dout, @Const int[] ids, int T, int C);

    // ---- Cross-entropy rows of one chunk: logits (rows, V) become the logit gradient, loss (rows)

    @Name("longtune_cross_entropy_rows") @NoException @CriticalRegion
    public static native void crossEntropyRows(float[] logits, double[] loss, @Const int[] labels, int rows, int V,
                                               float scale);
}
