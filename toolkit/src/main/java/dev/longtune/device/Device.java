package dev.longtune.device;

import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryTracker;
import dev.longtune.tensor.Tensor;

/**
 * What the engine needs from a compute device (docs/architecture.md, "One engine, two devices"): tagged
 * allocation, copies, GEMM and the fused ops, each forward/backward pair side by side. Backward methods
 * add (+=) into gradient tensors. Shapes are passed explicitly, llm.c style, and stated per method.
 * The model and trainer are written against this interface only.
 */
public interface Device extends AutoCloseable {
    String name();

    /** Memory of the device itself (a GPU's, or the process's for the CPU). */
    MemoryTracker memory();

    /** Host memory used for offloaded tensors (pinned on a GPU machine). */
    MemoryTracker hostMemory();

    Tensor allocate(String name, DType dtype, MemoryCategory category, int... shape);

    /** Host-side buffer for offloading (e.g. a layer input under offloaded checkpointing), zeroed. */
    Tensor allocateHost(String name, DType dtype, MemoryCategory category, int... shape);

    /**
     * {@link #allocateHost} for a buffer that a copy fills whole before anything reads it (an offloaded checkpoint):
     * its contents start undefined. On a GPU the zeroing of pinned memory is a pass over the host link on the compute
     * stream (a 32K-token layer input: 256 MiB, about 5 ms), which this skips.
     */
    default Tensor allocateHostForOverwrite(String name, DType dtype, MemoryCategory category, int... shape) {
        return allocateHost(name, dtype, category, shape);
    }

    /**
     * {@link #allocate} for a tensor whose every element is written before it is read (a layer's saved tensors, which
     * their producing ops write whole; a copy's destination): its contents start undefined, and a GPU skips the
     * zeroing pass (a 32K-token layer's saved tensors: 4 GiB, about 1.3 ms of HBM time).
     */
    default Tensor allocateForOverwrite(String name, DType dtype, MemoryCategory category, int... shape) {
        return allocate(name, dtype, category, shape);
    }

    /**
     * A tensor that Java code reads and writes directly ({@code floats()}): the optimizer's FP32 master
     * weights, moments and unscaled gradients. The CPU device's own memory; pinned host memory on a GPU
     * (ZeRO-offload: the optimizer runs on the host).
     */
    Tensor allocateCpuVisible(String name, DType dtype, MemoryCategory category, int... shape);

    /**
     * dst = src, element count must match; the copy is rounded to dst's dtype. Either side may be a
     * device or a host tensor (that is how checkpoints are offloaded and brought back).
     */
    void copy(Tensor dst, Tensor src);

    /**
     * dst[dstOffset, dstOffset + count) = src[srcOffset, srcOffset + count), in elements of their one dtype, queued on
     * the compute stream: how data parallelism packs a unit's slices into a collective's buffer and back.
     */
    default void copyRange(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count) {
        copyRange(dst, dstOffset, src, srcOffset, count, Stream.COMPUTE);
    }

    /** {@link #copyRange} queued on {@code stream} (ordered with other streams only through events). */
    void copyRange(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count, Stream stream);

    /** t = 0, queued on {@code stream}. */
    void zero(Tensor t, Stream stream);

    /**
     * dst[dstOffset, dstOffset + count) += src[srcOffset, srcOffset + count), rounded to dst's dtype, queued on
     * {@code stream}: data parallelism adds a rank's part of the reduced gradients into its shard off the compute stream.
     */
    void accumulateRange(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count, Stream stream);

    /** dst = values (row-major, rounded to dst's dtype). */
    void write(Tensor dst, float[] values);

    /** src's values as floats (a host copy for a GPU tensor). */
    float[] read(Tensor src);

    /** t = 0. */
    void zero(Tensor t);

    // ---- the optimizer's ops (CPU-visible tensors: HostArrays) ----

    /** x *= s, in place. */
    void scale(Tensor x, float s);

    /** Σ x² in double, summed in an order that depends only on the shape. */
    double sumOfSquares(Tensor x);

    /** One AdamW step (ops/AdamW) of FP32 param, m and v with an FP32 gradient; t counts from 1. */
    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1, double beta2, double eps,
               double weightDecay, int t);

    /**
     * Σ (x·scale)² in double with each x·scale rounded to FP32 first: bit for bit {@link #sumOfSquares} of an FP32
     * copy of x scaled by {@code scale} (which is what this default does; a backend may fuse it).
     */
    default double sumOfSquares(Tensor x, float scale) {
        if (x.dtype() == DType.FP32 && scale == 1f) {
            return sumOfSquares(x);
        }
        try (Tensor x32 = allocate(x.name() + ".fp32", DType.FP32, MemoryCategory.WORKSPACE, x.shape())) {
            copy(x32, x);
            scale(x32, scale);
            return sumOfSquares(x32);
        }
    }

    /**
     * The optimizer's whole update of one tensor, bit for bit these ops in this order (which is what this default
     * does; a backend may fuse them into one pass): the gradient copied to FP32, scaled by {@code unscale} and then,
     * unless it is 1, by {@code clip}; one {@link #adamw} step of the FP32 param, m and v; and the param rounded
     * into {@code weights}, the compute-precision copy the model reads (null when param is the weights itself).
     */
    default void adamwScaled(Tensor param, Tensor grad, Tensor m, Tensor v, float unscale, float clip, Tensor weights,
                             double lr, double beta1, double beta2, double eps, double weightDecay, int t) {
        try (Tensor g32 = allocate(grad.name() + ".grad32", DType.FP32, MemoryCategory.WORKSPACE, grad.shape())) {
            copy(g32, grad);
            scale(g32, unscale);
            if (clip != 1f) {
                scale(g32, clip);
            }
            adamw(param, g32, m, v, lr, beta1, beta2, eps, weightDecay, t);
        }
        if (weights != null) {
            copy(weights, param);
        }
    }

    /** Waits for queued work (a no-op where ops run synchronously); timings call it. */
    void synchronize();

    /**
     * The device's queues (docs/architecture.md): ops run on COMPUTE; copies each way may overlap with it, and so may
     * data parallelism's collectives on COMMUNICATION.
     */
    enum Stream { COMPUTE, HOST_TO_DEVICE, DEVICE_TO_HOST, COMMUNICATION }

    /** A point in one stream's queued work; used once (waited on, synchronised or discarded). */
    interface Event {
        /** The host waits until the work before this point is done. */
        void synchronize();

        /** Gives the event up without waiting (a later event covers it); its work still runs. */
        void discard();
    }

    /**
     * Sums the time a stream (the compute stream unless {@link #busyClock(Stream)} says otherwise) spends on
     * bracketed work ({@link #begin} … {@link #end}): CUDA events with timing on a GPU, wall time on the CPU (where
     * ops run as they are called). Brackets hold kernels only, not waits for copies, so on the compute stream the sum
     * is the device's busy time, to set against a step's wall time.
     */
    interface BusyClock {
        void begin();

        /**
         * {@link #begin} of a bracket named {@code label}: the idle time before it (from the end of the bracket before,
         * the previous call's last one included) is summed under that name, for {@link #takeIdleSeconds}.
         */
        default void begin(String label) { begin(); }

        void end();

        /** Seconds summed over the brackets closed since the last call (waits for the last one to finish). */
        double takeSeconds();

        /**
         * Seconds the device sat idle before each labelled kind of bracket, over the brackets {@link #takeSeconds} has
         * taken since the last call: where a step's wall time beyond its busy time went (waits for copies, the host).
         */
        default java.util.Map<String, Double> takeIdleSeconds() { return java.util.Map.of(); }
    }

    /** A new {@link BusyClock} on the compute stream. */
    default BusyClock busyClock() { return busyClock(Stream.COMPUTE); }

    /** A new {@link BusyClock} on {@code stream}: its brackets time that stream's work (host time on the CPU). */
    BusyClock busyClock(Stream stream);

    /** Marks the current end of {@code stream}'s queue. */
    Event record(Stream stream);

    /** Makes {@code stream} wait until {@code event} has passed before it runs what is queued next. */
    void waitFor(Stream stream, Event event);

    /**
     * dst = src (same dtype) queued on {@code stream}, ordered only by the events that stream was made to wait
     * for ({@link #waitFor}): to copy what compute wrote, first {@code waitFor(stream, record(COMPUTE))}; before
     * using dst on another stream (or overwriting src), wait for an event recorded on {@code stream} after it.
     * Either side may be device memory or pinned host memory ({@link #allocateHost}).
     */
    void copyAsync(Tensor dst, Tensor src, Stream stream);

    /** c (M, N) = op(a) · op(b) + beta · c; op(b) with transposeB reads b as (N, K) (Linear weights). */
    void matmul(Tensor c, Tensor a, Tensor b, int m, int n, int k, boolean transposeA, boolean transposeB, float beta);

    /** out = a + b, elementwise (residual connections). */
    void add(Tensor out, Tensor a, Tensor b);

    /** dst += src, elementwise. */
    void accumulate(Tensor dst, Tensor src);

    // inp (N, C), weight (C) -> out (N, C), rstd (N)
    void rmsNormForward(Tensor out, Tensor rstd, Tensor inp, Tensor weight, int n, int c, float eps);

    void rmsNormBackward(Tensor dinp, Tensor dweight, Tensor dout, Tensor inp, Tensor weight, Tensor rstd, int n, int c);

    // q (T, Hq, D), k (T, Hkv, D) rotated in place; positions (T) restart per packed document
    void ropeForward(Tensor q, Tensor k, int[] positions, double[] invFreq, int t, int hq, int hkv, int d);

    /** Rotates the incoming gradients back in place (RoPE is linear and orthogonal). */
    void ropeBackward(Tensor dq, Tensor dk, int[] positions, double[] invFreq, int t, int hq, int hkv, int d);

    // q (T, Hq, D), k and v (T, Hkv, D) -> out (T, Hq, D), lse (Hq, T); causal within each packed document
    void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int[] cuSeqlens, int t, int hq, int hkv, int d);

    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                           Tensor lse, int[] cuSeqlens, int t, int hq, int hkv, int d);

    // gate, up (N, F) -> out (N, F) = silu(gate) · up
    void swigluForward(Tensor out, Tensor gate, Tensor up, int n, int f);

    /**
     * d(gate), d(up) of {@link #swigluForward}: added into {@code dgate} and {@code dup} when {@code accumulate},
     * otherwise written over them (fresh gradients: the kernel then never reads their old values).
     */
    void swigluBackward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up, int n, int f, boolean accumulate);

    // ids (T), table (V, C) -> out (T, C)
    void embeddingForward(Tensor out, int[] ids, Tensor table, int t, int c);

    void embeddingBackward(Tensor dtable, Tensor dout, int[] ids, int t, int c);

    /**
     * Mean cross-entropy of hidden (N, H) · weightᵀ (V, H) against labels, chunked so the logits never
     * exist whole; adds gradientScale × its gradients into dhidden and dweight (either may be null).
     */
    double linearCrossEntropy(Tensor dhidden, Tensor dweight, Tensor hidden, Tensor weight, int[] labels,
                              int n, int h, int v, float gradientScale);

    @Override
    void close();
}
