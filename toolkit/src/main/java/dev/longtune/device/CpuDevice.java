package dev.longtune.device;

import dev.longtune.ops.Embedding;
import dev.longtune.ops.FlashAttention;
import dev.longtune.ops.FusedLinearCrossEntropy;
import dev.longtune.ops.Gemm;
import dev.longtune.ops.RmsNorm;
import dev.longtune.ops.Rope;
import dev.longtune.ops.SwiGlu;
import dev.longtune.ops.nativecpu.NativeCpuOps;
import dev.longtune.tensor.CpuMemory;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryTracker;
import dev.longtune.tensor.Tensor;

import java.util.stream.IntStream;

/**
 * The CPU device: tensors are floats rounded to their dtype, GEMM through ND4J, the fused ops (RMSNorm, SwiGLU,
 * RoPE, FlashAttention-2, embedding, the softmax rows of linear cross-entropy) from kernels/cpu (C++ with
 * OpenMP, bound by JavaCPP) when the native library loads, the fallback in plain Java; FP32 accumulation throughout. Every op result is rounded to its output's dtype, as a GPU kernel writing BF16 or
 * FP16 would.
 */
public final class CpuDevice implements Device {
    private final CpuMemory memory;
    private final CpuMemory host = new CpuMemory();

    public CpuDevice() { this(Long.MAX_VALUE); }

    /**
     * With the device's tensors (not the host's: offloaded state stays uncapped, as on a GPU) under {@code memoryCap}
     * logical bytes: a request past it throws {@link dev.longtune.tensor.OutOfMemoryException}, as a capped GPU does.
     */
    public CpuDevice(long memoryCap) {
        this.memory = new CpuMemory(new dev.longtune.tensor.MemoryTracker(dev.longtune.tensor.MemoryLocation.HOST_PAGEABLE), memoryCap);
    }

    @Override
    public String name() { return "cpu (" + Runtime.getRuntime().availableProcessors() + " cores)"; }

    @Override
    public MemoryTracker memory() { return memory.tracker(); }

    @Override
    public MemoryTracker hostMemory() { return host.tracker(); }

    @Override
    public Tensor allocate(String name, DType dtype, MemoryCategory category, int... shape) {
        return memory.allocate(name, dtype, category, shape);
    }

    @Override
    public Tensor allocateHost(String name, DType dtype, MemoryCategory category, int... shape) {
        return host.allocate(name, dtype, category, shape);
    }

    /**
     * Host memory, as on a GPU (ZeRO-offload's optimizer state): on the CPU it is the same RAM, but it is counted
     * where the planner puts it, and a device memory cap does not hold it.
     */
    @Override
    public Tensor allocateCpuVisible(String name, DType dtype, MemoryCategory category, int... shape) {
        return allocateHost(name, dtype, category, shape);
    }

    @Override
    public void scale(Tensor x, float s) { HostArrays.scale(x, s); }

    @Override
    public double sumOfSquares(Tensor x) { return HostArrays.sumOfSquares(x); }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1, double beta2, double eps,
                      double weightDecay, int t) {
        HostArrays.adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, t);
    }

    // ---- streams: every op runs to completion before it returns, so copies are immediate and events passed ----

    @Override
    public void synchronize() { }

    @Override
    public BusyClock busyClock(Stream stream) { // one thread does all of a CPU device's work, on every "stream"
        return new BusyClock() {
            private long started, total, lastEnd = -1;
            private final java.util.Map<String, Double> idle = new java.util.LinkedHashMap<>();

            @Override
            public void begin() { started = System.nanoTime(); }

            @Override
            public void begin(String label) {
                begin();
                if (lastEnd >= 0) {
                    idle.merge(label, (started - lastEnd) / 1e9, Double::sum);
                }
            }

            @Override
            public void end() {
                lastEnd = System.nanoTime();
                total += lastEnd - started;
            }

            @Override
            public double takeSeconds() {
                double s = total / 1e9;
                total = 0;
                return s;
            }

            @Override
            public java.util.Map<String, Double> takeIdleSeconds() {
                java.util.Map<String, Double> out = new java.util.LinkedHashMap<>(idle);
                idle.clear();
                return out;
            }
        };
    }

    @Override
    public Event record(Stream stream) { return DONE; }

    /** Ops run as they are called on the CPU: every point of a queue has already passed. */
    private static final Event DONE = new Event() {
        @Override
        public void synchronize() { }

        @Override
        public void discard() { }
    };

    @Override
    public void waitFor(Stream stream, Event event) { }

    @Override
    public void copyAsync(Tensor dst, Tensor src, Stream stream) { copy(dst, src); }

    @Override
    public void copy(Tensor dst, Tensor src) {
        if (dst.numel() != src.numel()) {
            throw new IllegalArgumentException("copy " + src + " into " + dst + ": element counts differ");
        }
        System.arraycopy(src.floats(), 0, dst.floats(), 0, (int) src.numel());
        dst.roundToDtype();
    }

    /** Ops run as they are called: every stream is the same one. */
    @Override
    public void copyRange(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count, Stream stream) {
        Ranges.check(dst, dstOffset, src, srcOffset, count);
        System.arraycopy(src.floats(), (int) srcOffset, dst.floats(), (int) dstOffset, (int) count);
    }

    @Override
    public void write(Tensor dst, float[] values) {
        if (values.length != dst.numel()) {
            throw new IllegalArgumentException("write " + values.length + " values into " + dst + ": element counts differ");
        }
        System.arraycopy(values, 0, dst.floats(), 0, values.length);
        dst.roundToDtype();
    }

    @Override
    public float[] read(Tensor src) { return src.floats().clone(); }

    @Override
    public void zero(Tensor t) { java.util.Arrays.fill(t.floats(), 0f); }

    @Override
    public void zero(Tensor t, Stream stream) { zero(t); }

    @Override
    public void accumulateRange(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count, Stream stream) {
        Ranges.check(dst, dstOffset, src, srcOffset, count);
        float[] d = dst.floats(), s = src.floats();
        int at = (int) dstOffset, from = (int) srcOffset, n = (int) count;
        for (int i = 0; i < n; i++) {
            d[at + i] += s[from + i];
        }
        dst.dtype().roundInPlace(d, at, at + n);
    }

    @Override
    public void matmul(Tensor c, Tensor a, Tensor b, int m, int n, int k, boolean transposeA, boolean transposeB, float beta) {
        Gemm.gemm(c.floats(), a.floats(), b.floats(), m, n, k, transposeA, transposeB, 1f, beta);
        c.roundToDtype();
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b) {
        float[] o = out.floats(), x = a.floats(), y = b.floats();
        IntStream.range(0, o.length).parallel().forEach(i -> o[i] = x[i] + y[i]);
        out.roundToDtype();
    }

    @Override
    public void accumulate(Tensor dst, Tensor src) {
        float[] d = dst.floats(), s = src.floats();
        IntStream.range(0, d.length).parallel().forEach(i -> d[i] += s[i]);
        dst.roundToDtype();
    }

    @Override
    public void rmsNormForward(Tensor out, Tensor rstd, Tensor inp, Tensor weight, int n, int c, float eps) {
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.rmsNormForward(out.floats(), rstd.floats(), inp.floats(), weight.floats(), n, c, eps);
        } else {
            RmsNorm.forward(out.floats(), rstd.floats(), inp.floats(), weight.floats(), n, c, eps);
        }
        out.roundToDtype();
    }

    @Override
    public void rmsNormBackward(Tensor dinp, Tensor dweight, Tensor dout, Tensor inp, Tensor weight, Tensor rstd, int n, int c) {
        float[] dw = dweight == null ? null : dweight.floats();
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.rmsNormBackward(dinp.floats(), dw, dout.floats(), inp.floats(), weight.floats(), rstd.floats(), n, c);
        } else {
            RmsNorm.backward(dinp.floats(), dw, dout.floats(), inp.floats(), weight.floats(), rstd.floats(), n, c);
        }
        dinp.roundToDtype();
        if (dweight != null) {
            dweight.roundToDtype();
        }
    }

    @Override
    public void ropeForward(Tensor q, Tensor k, int[] positions, double[] invFreq, int t, int hq, int hkv, int d) {
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.ropeForward(q.floats(), k.floats(), positions, invFreq, t, hq, hkv, d);
        } else {
            Rope.forward(q.floats(), k.floats(), positions, invFreq, t, hq, hkv, d);
        }
        q.roundToDtype();
        k.roundToDtype();
    }

    @Override
    public void ropeBackward(Tensor dq, Tensor dk, int[] positions, double[] invFreq, int t, int hq, int hkv, int d) {
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.ropeBackward(dq.floats(), dk.floats(), positions, invFreq, t, hq, hkv, d);
        } else {
            Rope.backward(dq.floats(), dk.floats(), positions, invFreq, t, hq, hkv, d);
        }
        dq.roundToDtype();
        dk.roundToDtype();
    }

    @Override
    public void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int[] cuSeqlens, int t, int hq, int hkv, int d) {
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.flashAttentionForward(out.floats(), lse.floats(), q.floats(), k.floats(), v.floats(), cuSeqlens, t, hq, hkv, d);
        } else {
            FlashAttention.forward(out.floats(), lse.floats(), q.floats(), k.floats(), v.floats(), cuSeqlens, t, hq, hkv, d);
        }
        out.roundToDtype();
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                                  Tensor lse, int[] cuSeqlens, int t, int hq, int hkv, int d) {
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.flashAttentionBackward(dq.floats(), dk.floats(), dv.floats(), dout.floats(), q.floats(), k.floats(),
                    v.floats(), out.floats(), lse.floats(), cuSeqlens, t, hq, hkv, d);
        } else {
            FlashAttention.backward(dq.floats(), dk.floats(), dv.floats(), dout.floats(), q.floats(), k.floats(), v.floats(),
                    out.floats(), lse.floats(), cuSeqlens, t, hq, hkv, d);
        }
        dq.roundToDtype();
        dk.roundToDtype();
        dv.roundToDtype();
    }

    @Override
    public void swigluForward(Tensor out, Tensor gate, Tensor up, int n, int f) {
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.swiGluForward(out.floats(), gate.floats(), up.floats(), n, f);
        } else {
            SwiGlu.forward(out.floats(), gate.floats(), up.floats(), n, f);
        }
        out.roundToDtype();
    }

    @Override
    public void swigluBackward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up, int n, int f,
                               boolean accumulate) {
        if (!accumulate) { // the ops add: from zero, 0 + x is x
            java.util.Arrays.fill(dgate.floats(), 0, n * f, 0f);
            java.util.Arrays.fill(dup.floats(), 0, n * f, 0f);
        }
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.swiGluBackward(dgate.floats(), dup.floats(), dout.floats(), gate.floats(), up.floats(), n, f);
        } else {
            SwiGlu.backward(dgate.floats(), dup.floats(), dout.floats(), gate.floats(), up.floats(), n, f);
        }
        dgate.roundToDtype();
        dup.roundToDtype();
    }

    @Override
    public void embeddingForward(Tensor out, int[] ids, Tensor table, int t, int c) {
        // a row gather: Java's System.arraycopy beats the JNI call (6.0 vs 8.0 ms at T=2048, C=4096,
        // docs/benchmarks.md), so the native kernel is kept for its parity test only
        Embedding.forward(out.floats(), ids, table.floats(), t, c);
        out.roundToDtype();
    }

    @Override
    public void embeddingBackward(Tensor dtable, Tensor dout, int[] ids, int t, int c) {
        if (NativeCpuOps.isAvailable()) {
            NativeCpuOps.embeddingBackward(dtable.floats(), dout.floats(), ids, t, c);
        } else {
            Embedding.backward(dtable.floats(), dout.floats(), ids, t, c);
        }
        dtable.roundToDtype();
    }

    @Override
    public double linearCrossEntropy(Tensor dhidden, Tensor dweight, Tensor hidden, Tensor weight, int[] labels,
                                     int n, int h, int v, float gradientScale) {
        int chunk = Math.min(cpuChunk(n, h, v), Math.max(1, n));
        // the op's own scratch, counted here by its formula: a chunk of logits and two chunks of hidden rows
        long logits = (long) chunk * v * 4, rows = 2L * chunk * h * 4;
        memory().allocated(MemoryCategory.LOGITS, logits);
        memory().allocated(MemoryCategory.WORKSPACE, rows);
        try {
            double loss = FusedLinearCrossEntropy.forwardBackward(dhidden == null ? null : dhidden.floats(),
                    dweight == null ? null : dweight.floats(), hidden.floats(), weight.floats(), labels, n, h, v, chunk,
                    gradientScale, NativeCpuOps.isAvailable() ? NativeCpuOps::crossEntropyRows : FusedLinearCrossEntropy.JAVA_ROWS);
            if (dhidden != null) {
                dhidden.roundToDtype();
            }
            if (dweight != null) {
                dweight.roundToDtype();
            }
            return loss;
        } finally {
            memory().freed(MemoryCategory.LOGITS, logits);
            memory().freed(MemoryCategory.WORKSPACE, rows);
        }
    }

    /**
     * Liger's chunk rule keeps a GPU's logits chunk as small as the hidden states; on the CPU each GEMM call
     * also copies the LM head through ND4J, so chunks of at least 256 tokens amortise that (4.7× faster at
     * 2,048 tokens with the Llama 3 vocabulary), at 256·V floats of logits scratch.
     */
    static int cpuChunk(int n, int h, int v) {
        return Math.max(1, Math.min(n, Math.max(256, FusedLinearCrossEntropy.defaultChunkSize(n, h, v))));
    }


    @Override
    public void close() { }
}
