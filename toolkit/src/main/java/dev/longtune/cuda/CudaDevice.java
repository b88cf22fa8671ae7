package dev.longtune.cuda;

import dev.longtune.device.Device;
import dev.longtune.device.HostArrays;
import dev.longtune.tensor.CpuMemory;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.DeviceStorage;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryLocation;
import dev.longtune.tensor.MemoryTracker;
import dev.longtune.tensor.Tensor;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static dev.longtune.tensor.MemoryCategory.LOGITS;
import static dev.longtune.tensor.MemoryCategory.WORKSPACE;

/**
 * The GPU device: tensors in memory from a {@link CachingAllocator} (optionally capped), GEMMs in cuBLAS, the
 * fused ops as kernels/cuda compiled by NVRTC for this GPU. Host tensors (offloaded checkpoints) are pinned
 * memory from a second caching allocator; CPU-visible tensors (the optimizer's state, ZeRO-offload) are Java
 * arrays counted in the host tracker. Three streams: the ops run in order on the compute stream; copies may be
 * queued on the host-to-device and device-to-host streams ({@link #copyAsync}), ordered against compute with
 * {@link #record} and {@link #waitFor}; the synchronous {@link #copy}, {@link #read} and {@link #write} return
 * when their copy has finished.
 * New tensors are zeroed, as on the CPU.
 */
public final class CudaDevice implements Device {
    private final int index, arch;
    private final String gpuName;
    private final MemoryTracker memory = new MemoryTracker(MemoryLocation.GPU);
    private final MemoryTracker host = new MemoryTracker(MemoryLocation.HOST_PINNED);
    private final CpuMemory cpuVisible = new CpuMemory(host);
    private final CachingAllocator gpu, pinned;
    private final CUstream_st compute = new CUstream_st(), toDevice = new CUstream_st(), toHost = new CUstream_st(),
            comms = new CUstream_st();
    private final Cublas blas;
    private final CudaKernels kernels;
    /** What the fused loss's FP32 logits and dlogits chunk may take (CudaOptions.lossChunkBytes). */
    private final long lossChunkBytes;
    private final int multiprocessors;
    private boolean closed;

    public CudaDevice() { this(CudaOptions.defaults()); }

    public CudaDevice(CudaOptions options) {
        if (!Cuda.available()) {
            throw new IllegalStateException("no CUDA device: " + Cuda.whyUnavailable());
        }
        this.index = options.deviceIndex();
        this.lossChunkBytes = options.lossChunkBytes();
        Cuda.check(cudart.cudaSetDevice(index), "cudaSetDevice(" + index + ")");
        Cuda.check(cudart.cudaFree(null), "creating the CUDA context");
        int[] v = new int[1];
        Cuda.check(cudart.cudaDeviceGetAttribute(v, cudart.cudaDevAttrComputeCapabilityMajor, index), "compute capability");
        int major = v[0];
        Cuda.check(cudart.cudaDeviceGetAttribute(v, cudart.cudaDevAttrComputeCapabilityMinor, index), "compute capability");
        this.arch = major * 10 + v[0];
        Cuda.check(cudart.cudaDeviceGetAttribute(v, cudart.cudaDevAttrMultiProcessorCount, index), "multiprocessor count");
        this.multiprocessors = v[0];
        Cuda.check(cudart.cudaDeviceGetAttribute(v, cudart.cudaDevAttrMaxSharedMemoryPerBlockOptin, index), "shared memory");
        int maxShared = v[0];
        org.bytedeco.cuda.cudart.cudaDeviceProp prop = new org.bytedeco.cuda.cudart.cudaDeviceProp();
        Cuda.check(cudart.cudaGetDeviceProperties(prop, index), "cudaGetDeviceProperties");
        this.gpuName = prop.name().getString();
        for (CUstream_st s : new CUstream_st[] {compute, toDevice, toHost, comms}) {
            Cuda.check(cudart.cudaStreamCreateWithFlags(s, cudart.cudaStreamNonBlocking), "cudaStreamCreate");
        }
        this.gpu = new CachingAllocator("cuda:" + index + " (" + gpuName + ")", new CachingAllocator.RawMemory() {
            @Override
            public long allocate(long bytes) {
                PointerPointer<?> out = new PointerPointer<>(1);
                int err = cudart.cudaMalloc(out, bytes);
                if (err == cudart.cudaErrorMemoryAllocation) {
                    cudart.cudaGetLastError(); // clear the sticky error so the retry can succeed
                    return 0;
                }
                Cuda.check(err, "cudaMalloc(" + bytes + ")");
                return out.get(0).address();
            }

            @Override
            public void free(long address) { Cuda.check(cudart.cudaFree(Cuda.at(address)), "cudaFree"); }
        }, options.memoryCap(), memory);
        this.pinned = new CachingAllocator("pinned host memory", new CachingAllocator.RawMemory() {
            @Override
            public long allocate(long bytes) {
                PointerPointer<?> out = new PointerPointer<>(1);
                int err = cudart.cudaHostAlloc(out, bytes, cudart.cudaHostAllocDefault);
                if (err == cudart.cudaErrorMemoryAllocation) {
                    cudart.cudaGetLastError();
                    return 0;
                }
                Cuda.check(err, "cudaHostAlloc(" + bytes + ")");
                return out.get(0).address();
            }

            @Override
            public void free(long address) { Cuda.check(cudart.cudaFreeHost(Cuda.at(address)), "cudaFreeHost"); }
        }, Long.MAX_VALUE, host);
        this.blas = new Cublas(compute);
        int kernelShared = options.sharedMemoryLimit() > 0 ? Math.min(maxShared, options.sharedMemoryLimit()) : maxShared;
        this.kernels = new CudaKernels(new NvrtcCompiler(options.kernelCache()), arch, kernelShared, options.wmmaAttention());
    }

    @Override
    public String name() { return "cuda:" + index + " (" + gpuName + ", sm_" + arch + ")"; }

    public int arch() { return arch; }

    /** The GPU's marketing name, e.g. "NVIDIA H200". */
    public String gpuName() { return gpuName; }

    public CudaKernels kernels() { return kernels; }

    /** The GPU allocator: reserved bytes, fragmentation, the cap. */
    public CachingAllocator allocator() { return gpu; }

    /** What an out-of-memory error should suggest (the trainer sets the planner's advice). */
    public void setOutOfMemoryAdvice(Supplier<String> advice) { gpu.setAdvice(advice); }

    @Override
    public MemoryTracker memory() { return memory; }

    @Override
    public MemoryTracker hostMemory() { return host; }

    private record Block(CachingAllocator from, long address, long bytes) implements DeviceStorage {
        @Override
        public void release() { from.free(address, bytes); }
    }

    private Tensor allocateOn(CachingAllocator a, MemoryTracker t, String name, DType dtype, MemoryCategory category,
                              int... shape) {
        return allocateOn(a, t, true, name, dtype, category, shape);
    }

    private Tensor allocateOn(CachingAllocator a, MemoryTracker t, boolean zeroed, String name, DType dtype,
                              MemoryCategory category, int... shape) {
        long bytes = Tensor.numel(shape) * dtype.bytes;
        long address = a.allocate(Math.max(1, bytes), category, "'" + name + "' " + Arrays.toString(shape) + " " + dtype.id);
        Tensor tensor = Tensor.onDevice(name, dtype, category, t, new Block(a, address, Math.max(1, bytes)), shape);
        if (bytes > 0 && zeroed) {
            Cuda.check(cudart.cudaMemsetAsync(Cuda.at(address), 0, bytes, compute), "zeroing " + name);
        }
        return tensor;
    }

    @Override
    public Tensor allocate(String name, DType dtype, MemoryCategory category, int... shape) {
        return allocateOn(gpu, memory, name, dtype, category, shape);
    }

    @Override
    public Tensor allocateHost(String name, DType dtype, MemoryCategory category, int... shape) {
        return allocateOn(pinned, host, name, dtype, category, shape);
    }

    /** Pinned host memory left as it is: the copy that fills it is queued next, and the zeroing would cross PCIe. */
    @Override
    public Tensor allocateHostForOverwrite(String name, DType dtype, MemoryCategory category, int... shape) {
        return allocateOn(pinned, host, false, name, dtype, category, shape);
    }

    @Override
    public Tensor allocateForOverwrite(String name, DType dtype, MemoryCategory category, int... shape) {
        return allocateOn(gpu, memory, false, name, dtype, category, shape);
    }

    @Override
    public Tensor allocateCpuVisible(String name, DType dtype, MemoryCategory category, int... shape) {
        return cpuVisible.allocate(name, dtype, category, shape);
    }

    static String suffix(DType d) {
        return switch (d) {
            case FP32 -> "f32";
            case BF16 -> "bf16";
            case FP16 -> "f16";
            default -> throw new IllegalArgumentException("no kernels for " + d);
        };
    }

    private static final int BLOCK = 256;

    /** A grid for grid-stride elementwise kernels over n elements. */
    private int elementGrid(long n) {
        return (int) Math.max(1, Math.min((n + BLOCK - 1) / BLOCK, 32L * multiprocessors));
    }

    /** A grid for grid-stride kernels that move 16-byte packs (up to 8 elements per thread and step). */
    private int packGrid(long n) {
        return elementGrid((n + 7) / 8);
    }

    /**
     * Threads per block for the RMSNorm kernels: enough that a row of c elements is at most two 16-byte packs per
     * thread (their register-resident form; kernels/cuda/rms_norm.cu), at least {@value #BLOCK}, at most 1,024.
     */
    static int normBlock(int c, DType dtype) {
        int perPack = dtype == DType.FP32 ? 4 : 8;
        int threads = (c + 2 * perPack - 1) / (2 * perPack);
        return Math.min(1024, Math.max(BLOCK, (threads + 31) / 32 * 32));
    }

    private void launch(String name, int gridX, int gridY, int block, int shared, Object... args) {
        kernels.launch(name, compute, gridX, gridY, 1, block, shared, args);
    }

    // ---- copies -------------------------------------------------------------------------------------------

    @Override
    public void copy(Tensor dst, Tensor src) {
        if (dst.numel() != src.numel()) {
            throw new IllegalArgumentException("copy " + src + " into " + dst + ": element counts differ");
        }
        if (!dst.onDevice() && !src.onDevice()) {
            System.arraycopy(src.floats(), 0, dst.floats(), 0, (int) src.numel());
            dst.roundToDtype();
        } else if (!dst.onDevice() && src.location() == MemoryLocation.HOST_PINNED) {
            synchronize(); // what compute queued into the pinned buffer has landed
            PinnedHost.decode(src.address(), src.dtype(), dst.floats());
            dst.roundToDtype();
        } else if (!dst.onDevice()) {
            System.arraycopy(read(src), 0, dst.floats(), 0, (int) src.numel());
            dst.roundToDtype();
        } else if (!src.onDevice() && dst.location() == MemoryLocation.HOST_PINNED) {
            synchronize(); // nothing queued still reads or writes the pinned buffer
            PinnedHost.encode(src.floats(), dst.address(), dst.dtype());
        } else if (!src.onDevice()) {
            write(dst, src.floats());
        } else if (dst.dtype() == src.dtype()) {
            Cuda.check(cudart.cudaMemcpyAsync(Cuda.at(dst.address()), Cuda.at(src.address()), src.bytes(),
                    cudart.cudaMemcpyDefault, compute), "copying " + src.name() + " to " + dst.name());
        } else {
            cast(dst.address(), dst.dtype(), src.address(), src.dtype(), src.numel());
        }
    }

    private void cast(long dst, DType to, long src, DType from, long n) {
        launch("cast_" + suffix(from) + "_to_" + suffix(to), elementGrid(n), 1, BLOCK, 0,
                CudaKernels.address(dst), CudaKernels.address(src), n);
    }

    @Override
    public void write(Tensor dst, float[] values) {
        if (values.length != dst.numel()) {
            throw new IllegalArgumentException("write " + values.length + " values into " + dst + ": element counts differ");
        }
        if (!dst.onDevice()) {
            System.arraycopy(values, 0, dst.floats(), 0, values.length);
            dst.roundToDtype();
            return;
        }
        if (dst.location() == MemoryLocation.HOST_PINNED) {
            synchronize(); // nothing queued still reads or writes the pinned buffer
            PinnedHost.encode(values, dst.address(), dst.dtype()); // no trip through the GPU
            return;
        }
        int n = values.length;
        withPinned(4L * n, dst.name() + " (upload staging)", staging -> {
            floatsAt(staging, n).put(values, 0, n);
            if (dst.dtype() == DType.FP32) {
                copyBytes(dst.address(), staging, 4L * n);
            } else {
                try (Tensor f32 = allocate(dst.name() + " (fp32 staging)", DType.FP32, WORKSPACE, n)) {
                    copyBytes(f32.address(), staging, 4L * n);
                    cast(dst.address(), dst.dtype(), f32.address(), DType.FP32, n);
                    synchronize(); // as run on the H200; stream order alone should suffice (see rope)
                }
            }
            return null;
        });
    }

    @Override
    public float[] read(Tensor src) {
        if (!src.onDevice()) {
            return src.floats().clone();
        }
        int n = (int) src.numel();
        float[] out = new float[n];
        if (src.location() == MemoryLocation.HOST_PINNED) {
            synchronize(); // what compute queued into the pinned buffer has landed
            PinnedHost.decode(src.address(), src.dtype(), out);
            return out;
        }
        withPinned(4L * n, src.name() + " (download staging)", staging -> {
            if (src.dtype() == DType.FP32) {
                copyBytes(staging, src.address(), 4L * n);
            } else {
                try (Tensor f32 = allocate(src.name() + " (fp32 staging)", DType.FP32, WORKSPACE, n)) {
                    cast(f32.address(), DType.FP32, src.address(), src.dtype(), n);
                    copyBytes(staging, f32.address(), 4L * n);
                }
            }
            floatsAt(staging, n).get(out, 0, n);
            return null;
        });
        return out;
    }

    /** A pinned host buffer for one transfer (counted as host workspace), given back to the pinned cache after. */
    private <T> T withPinned(long bytes, String what, java.util.function.LongFunction<T> body) {
        long address = pinned.allocate(Math.max(1, bytes), WORKSPACE, what);
        host.allocated(WORKSPACE, bytes);
        try {
            return body.apply(address);
        } finally {
            host.freed(WORKSPACE, bytes);
            pinned.free(address, Math.max(1, bytes));
        }
    }

    private static FloatPointer floatsAt(long address, long n) {
        FloatPointer p = new FloatPointer(Cuda.at(address));
        p.capacity(n);
        p.limit(n);
        return p;
    }

    /**
     * A copy between any two places (GPU, pinned or pageable host memory), finished before it returns: the
     * host side may be a JavaCPP buffer that goes away right after.
     */
    private void copySync(Pointer dst, Pointer src, long bytes) {
        Cuda.check(cudart.cudaMemcpyAsync(dst, src, bytes, cudart.cudaMemcpyDefault, compute), "copy of " + bytes + " B");
        synchronize();
    }

    private void copyBytes(long dst, long src, long bytes) { copySync(Cuda.at(dst), Cuda.at(src), bytes); }

    /** Int arrays the ops take from the host (ids, positions, labels, offsets), uploaded for one call. */
    private Tensor ints(String name, int[] values) {
        Tensor t = allocate(name, DType.INT32, WORKSPACE, Math.max(1, values.length));
        try (IntPointer p = new IntPointer(values)) {
            copySync(Cuda.at(t.address()), p, 4L * values.length);
        }
        return t;
    }

    /** An upload kept for later calls: the host array it was made from (compared on use) and the GPU copy. */
    private record Upload(Object values, Tensor onGpu) {}

    // A micro-batch's metadata (ids, positions, sequence starts, labels) and the RoPE frequencies are the same
    // arrays for every layer: uploaded (and waited for) once, then reused while the array is unchanged, instead of
    // a synchronising copy per op. The last few arrays are kept, by identity; an evicted copy is freed on the
    // compute stream, whose queued kernels are the only readers.
    private static final int KEPT_UPLOADS = 8;
    private final Map<Object, Upload> uploads = new IdentityHashMap<>();
    private final ArrayDeque<Object> uploadOrder = new ArrayDeque<>();

    /** The GPU copy of batch metadata, uploaded on first use; the caller must not close it. */
    private Tensor batchInts(String name, int[] values) {
        Upload u = uploads.get(values);
        if (u != null && Arrays.equals((int[]) u.values(), values)) {
            return u.onGpu();
        }
        Tensor t = ints(name, values);
        keep(values, values.clone(), t);
        return t;
    }

    /** The RoPE inverse frequencies on the GPU (doubles, in an FP32 buffer of twice the length), uploaded once per array. */
    private Tensor ropeFrequencies(double[] invFreq) {
        Upload u = uploads.get(invFreq);
        if (u != null && Arrays.equals((double[]) u.values(), invFreq)) {
            return u.onGpu();
        }
        Tensor freq = allocate("rope inverse frequencies", DType.FP32, WORKSPACE, 2 * invFreq.length);
        try (DoublePointer f = new DoublePointer(invFreq)) {
            copySync(Cuda.at(freq.address()), f, 8L * invFreq.length);
        }
        keep(invFreq, invFreq.clone(), freq);
        return freq;
    }

    private void keep(Object key, Object copy, Tensor onGpu) {
        Upload old = uploads.put(key, new Upload(copy, onGpu));
        if (old != null) {
            old.onGpu().close();
            uploadOrder.remove(key);
        }
        uploadOrder.addLast(key);
        if (uploadOrder.size() > KEPT_UPLOADS) {
            uploads.remove(uploadOrder.removeFirst()).onGpu().close();
        }
    }

    @Override
    public void zero(Tensor t) {
        if (!t.onDevice()) {
            Arrays.fill(t.floats(), 0f);
            return;
        }
        Cuda.check(cudart.cudaMemsetAsync(Cuda.at(t.address()), 0, t.bytes(), compute), "zeroing " + t.name());
    }

    @Override
    public void zero(Tensor t, Stream s) {
        if (!t.onDevice()) {
            zero(t);
            return;
        }
        Cuda.check(cudart.cudaMemsetAsync(Cuda.at(t.address()), 0, t.bytes(), stream(s)), "zeroing " + t.name() + " on " + s);
    }

    @Override
    public void accumulateRange(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count, Stream s) {
        dev.longtune.device.Ranges.check(dst, dstOffset, src, srcOffset, count);
        long b = dst.dtype().bytes;
        kernels.launch("accumulate_" + suffix(dst.dtype()), stream(s), elementGrid(count), 1, 1, BLOCK, 0,
                dst.address() + dstOffset * b, src.address() + srcOffset * b, count); // device pointers as 64-bit values
    }

    @Override
    public void synchronize() {
        hostWaits.count();
        Cuda.check(cudart.cudaStreamSynchronize(compute), "cudaStreamSynchronize");
    }

    /** Host waits in all, and those of each thread (a background optimizer thread waits by design; the queueing one should not). */
    static final class WaitCounter {
        private final java.util.concurrent.atomic.AtomicLong all = new java.util.concurrent.atomic.AtomicLong();
        private final ThreadLocal<long[]> here = ThreadLocal.withInitial(() -> new long[1]);
        private final ThreadLocal<List<StackTraceElement[]>> traced = new ThreadLocal<>();

        void count() {
            all.incrementAndGet();
            here.get()[0]++;
            List<StackTraceElement[]> t = traced.get();
            if (t != null) {
                t.add(new Throwable().getStackTrace());
            }
        }
    }

    /**
     * Starts (or, with false, stops) recording where the calling thread waits for the GPU: {@link #tracedHostWaits}
     * then returns the call stack of each wait since, to find a wait that should not be there.
     */
    public void traceHostWaits(boolean on) { hostWaits.traced.set(on ? new ArrayList<>() : null); }

    /** The call stacks of the calling thread's host waits since {@link #traceHostWaits}(true); empty when not tracing. */
    public List<StackTraceElement[]> tracedHostWaits() {
        List<StackTraceElement[]> t = hostWaits.traced.get();
        return t == null ? List.of() : List.copyOf(t);
    }

    private final WaitCounter hostWaits = new WaitCounter();
    private final java.util.concurrent.atomic.AtomicLong gemms = new java.util.concurrent.atomic.AtomicLong();

    /** Work queued on the GPU so far: our kernels and cuBLAS's GEMM calls (host overhead per layer: their rate). */
    public long launches() { return kernels.launches() + gemms.get(); }

    /** Times the host has waited for the GPU so far (stream or event synchronisation, synchronous copies). */
    public long hostWaits() { return hostWaits.all.get(); }

    /** The host waits of the calling thread alone (the thread that queues a layer's work). */
    public long hostWaitsOnThisThread() { return hostWaits.here.get()[0]; }

    // ---- GEMM and elementwise -----------------------------------------------------------------------------

    @Override
    public void matmul(Tensor c, Tensor a, Tensor b, int m, int n, int k, boolean transposeA, boolean transposeB, float beta) {
        gemms.incrementAndGet();
        if (a.dtype() != b.dtype()) {
            throw new IllegalArgumentException("matmul of " + a + " and " + b + ": inputs must share a dtype");
        }
        blas.gemm(c.address(), c.dtype(), a.address(), b.address(), a.dtype(), m, n, k, transposeA, transposeB, 1f, beta);
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b) {
        long n = out.numel();
        launch("add_" + suffix(out.dtype()), elementGrid(n), 1, BLOCK, 0, out, a, b, n);
    }

    @Override
    public void accumulate(Tensor dst, Tensor src) {
        long n = dst.numel();
        launch("accumulate_" + suffix(dst.dtype()), elementGrid(n), 1, BLOCK, 0, dst, src, n);
    }

    @Override
    public void scale(Tensor x, float s) {
        if (!x.onDevice()) {
            HostArrays.scale(x, s);
            return;
        }
        long n = x.numel();
        launch("scale_" + suffix(x.dtype()), elementGrid(n), 1, BLOCK, 0, x, s, n);
    }

    @Override
    public double sumOfSquares(Tensor x) {
        if (!x.onDevice()) {
            return HostArrays.sumOfSquares(x);
        }
        return deviceSumOfSquares(x, 1f);
    }

    /** Without the FP32 copy: the kernel rounds each x·scale to float before squaring it, as scale_f32 would. */
    @Override
    public double sumOfSquares(Tensor x, float scale) {
        return x.onDevice() ? deviceSumOfSquares(x, scale) : Device.super.sumOfSquares(x, scale);
    }

    private double deviceSumOfSquares(Tensor x, float scale) {
        long n = x.numel();
        int grid = (int) Math.max(1, Math.min((n + BLOCK - 1) / BLOCK, 1024));
        try (Tensor partial = allocate("sum of squares partials", DType.FP32, WORKSPACE, 2 * grid)) { // grid doubles
            launch("sum_squares_" + suffix(x.dtype()), grid, 1, BLOCK, 0, partial, x, n, scale);
            try (DoublePointer p = new DoublePointer(grid)) {
                copySync(p, Cuda.at(partial.address()), 8L * grid);
                double s = 0;
                for (int i = 0; i < grid; i++) {
                    s += p.get(i);
                }
                return s;
            }
        }
    }

    // ---- fused ops ----------------------------------------------------------------------------------------

    @Override
    public void rmsNormForward(Tensor out, Tensor rstd, Tensor inp, Tensor weight, int n, int c, float eps) {
        launch("rms_norm_forward_" + suffix(out.dtype()), n, 1, normBlock(c, out.dtype()), 0, out, rstd, inp, weight, n, c, eps);
    }

    @Override
    public void rmsNormBackward(Tensor dinp, Tensor dweight, Tensor dout, Tensor inp, Tensor weight, Tensor rstd, int n, int c) {
        int blocks = Math.max(1, Math.min(n, 2 * multiprocessors));
        int rowsPerBlock = (n + blocks - 1) / blocks;
        blocks = (n + rowsPerBlock - 1) / rowsPerBlock;
        String s = suffix(dinp.dtype());
        Tensor partial = dweight == null ? null : allocate("rms norm dweight partials", DType.FP32, WORKSPACE, blocks, c);
        try {
            launch("rms_norm_backward_" + s, blocks, 1, normBlock(c, dinp.dtype()), 0, dinp, partial, dout, inp, weight,
                    rstd, n, c, rowsPerBlock);
            if (dweight != null) {
                launch("add_row_sums_" + s, (c + BLOCK - 1) / BLOCK, 1, BLOCK, 0, dweight, partial, blocks, c);
            }
        } finally {
            if (partial != null) {
                partial.close();
            }
        }
    }

    private void rope(Tensor q, Tensor k, int[] positions, double[] invFreq, int t, int hq, int hkv, int d, int inverse) {
        int half = d / 2;
        Tensor pos = batchInts("rope positions", positions), freq = ropeFrequencies(invFreq);
        try (Tensor cos = allocate("rope cos", DType.FP32, WORKSPACE, t, half);
             Tensor sin = allocate("rope sin", DType.FP32, WORKSPACE, t, half)) {
            launch("rope_table", elementGrid((long) t * half), 1, BLOCK, 0, cos, sin, pos, freq, t, half);
            String s = suffix(q.dtype());
            launch("rope_rotate_" + s, elementGrid((long) t * hq * half), 1, BLOCK, 0, q, cos, sin, t, hq, d, inverse);
            launch("rope_rotate_" + s, elementGrid((long) t * hkv * half), 1, BLOCK, 0, k, cos, sin, t, hkv, d, inverse);
        }
    }

    @Override
    public void ropeForward(Tensor q, Tensor k, int[] positions, double[] invFreq, int t, int hq, int hkv, int d) {
        rope(q, k, positions, invFreq, t, hq, hkv, d, 0);
    }

    @Override
    public void ropeBackward(Tensor dq, Tensor dk, int[] positions, double[] invFreq, int t, int hq, int hkv, int d) {
        rope(dq, dk, positions, invFreq, t, hq, hkv, d, 1);
    }

    @Override
    public void attentionForward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int[] cuSeqlens, int t, int hq, int hkv, int d) {
        CudaAttention.forward(this, out, lse, q, k, v, batchInts("cu_seqlens", cuSeqlens), cuSeqlens.length - 1, t, hq, hkv, d);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                                  Tensor lse, int[] cuSeqlens, int t, int hq, int hkv, int d) {
        CudaAttention.backward(this, dq, dk, dv, dout, q, k, v, out, lse, batchInts("cu_seqlens", cuSeqlens),
                cuSeqlens.length - 1, t, hq, hkv, d);
    }

    /** For {@link CudaAttention}: a launch on the compute stream. */
    void launchKernel(String name, int gridX, int gridY, int block, int shared, Object... args) {
        launch(name, gridX, gridY, block, shared, args);
    }

    @Override
    public void swigluForward(Tensor out, Tensor gate, Tensor up, int n, int f) {
        long count = (long) n * f;
        launch("swiglu_forward_" + suffix(out.dtype()), packGrid(count), 1, BLOCK, 0, out, gate, up, count);
    }

    @Override
    public void swigluBackward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up, int n, int f,
                               boolean accumulate) {
        long count = (long) n * f;
        launch((accumulate ? "swiglu_backward_" : "swiglu_backward_write_") + suffix(dgate.dtype()), packGrid(count),
                1, BLOCK, 0, dgate, dup, dout, gate, up, count);
    }

    @Override
    public void embeddingForward(Tensor out, int[] ids, Tensor table, int t, int c) {
        launch("embedding_forward_" + suffix(out.dtype()), elementGrid((long) t * c), 1, BLOCK, 0, out,
                batchInts("token ids", ids), table, t, c);
    }

    @Override
    public void embeddingBackward(Tensor dtable, Tensor dout, int[] ids, int t, int c) {
        EmbeddingSegments s = EmbeddingSegments.of(ids, t);
        try (Tensor order = ints("embedding order", s.order()); Tensor start = ints("embedding segments", s.segmentStart());
             Tensor unique = ints("embedding ids", s.uniqueIds())) {
            launch("embedding_backward_" + suffix(dtable.dtype()), s.uniqueIds().length, 1, BLOCK, 0, dtable, dout, order,
                    start, unique, s.uniqueIds().length, c);
        }
    }

    /** The fused loss's passes over each chunk: logits GEMM, softmax rows, dH GEMM, dW GEMM. */
    public enum LossStage { LOGITS, SOFTMAX, DHIDDEN, DWEIGHT }

    @Override
    public double linearCrossEntropy(Tensor dhidden, Tensor dweight, Tensor hidden, Tensor weight, int[] labels,
                                     int n, int h, int v, float gradientScale) {
        return linearCrossEntropy(dhidden, dweight, hidden, weight, labels, n, h, v, gradientScale,
                java.util.EnumSet.allOf(LossStage.class));
    }

    /**
     * The fused loss running only {@code stages} in each chunk, so that GpuBench can time each alone; with fewer than
     * all of them the loss and gradients are meaningless, only the time is.
     */
    public double linearCrossEntropy(Tensor dhidden, Tensor dweight, Tensor hidden, Tensor weight, int[] labels,
                                     int n, int h, int v, float gradientScale, java.util.Set<LossStage> stages) {
        int valid = 0;
        for (int i = 0; i < n; i++) {
            if (labels[i] != -100) {
                if (labels[i] < 0 || labels[i] >= v) {
                    throw new IllegalArgumentException("label " + labels[i] + " at token " + i + " is outside the vocabulary [0, " + v + ")");
                }
                valid++;
            }
        }
        if (valid == 0) {
            return 0.0;
        }
        DType e = hidden.dtype();
        int chunk = dev.longtune.ops.FusedLinearCrossEntropy.gpuChunkRows(n, v, e.bytes, lossChunkBytes);
        float gradScale = gradientScale / valid;
        long eb = e.bytes, gb = dhidden == null ? 0 : dhidden.dtype().bytes;
        // Masked tokens (prompts, padding) cost nothing: the chunks run over the valid tokens only, as the CPU op
        // does. Their hidden rows, and the rows of dhidden the dH GEMM accumulates into, are gathered into the tail
        // of the FP32 logits buffer (and dhidden's scattered back), the chunk's logits taking fewer rows: the same
        // memory as with every token valid.
        long logitsBytes = 4L * chunk * v;
        int rowsPerChunk = chunk;
        if (valid < n) {
            rowsPerChunk = (int) Math.min(valid, logitsBytes / (4L * v + (long) h * (eb + gb)));
            while (rowsPerChunk > 0 && gatheredEnd(rowsPerChunk, v, h, eb, gb) > logitsBytes) {
                rowsPerChunk--;
            }
            // not cut to a multiple of 128 (1,152 rows instead of 1,240 at 128K): more chunks, 665 against 643 ms
            // (bench/results/flce-masked-rows-2026-12-01/chunk-rows-128-multiple)
        }
        boolean compact = valid < n && rowsPerChunk > 0;
        if (!compact) {
            rowsPerChunk = chunk;
        }
        int rowCount = compact ? valid : n, step = rowsPerChunk;
        try (Tensor lossRows = allocate("loss per token", DType.FP32, WORKSPACE, rowCount);
             Tensor logits = allocate("logits chunk", DType.FP32, LOGITS, chunk, v);
             Tensor dlogits = allocate("dlogits chunk", e, LOGITS, chunk, v)) {
            // masked: the valid tokens' rows, then their labels, in one upload kept while the labels are the same
            Tensor rowsAndLabels = compact ? validRowsAndLabels(labels, valid) : null;
            Tensor lab = compact ? null : batchInts("labels", labels);
            long labelsAt = compact ? rowsAndLabels.address() + 4L * valid : lab.address();
            long gathered = logits.address() + gatherOffset(step, v), gatheredGrad = gathered + align256((long) step * h * eb);
            for (int r0 = 0; r0 < rowCount; r0 += step) {
                int rows = Math.min(step, rowCount - r0);
                CudaKernels.Address rowIds = compact ? CudaKernels.address(rowsAndLabels.address() + 4L * r0) : null;
                long hiddenRows = compact ? gathered : hidden.address() + (long) r0 * h * eb;
                if (stages.contains(LossStage.LOGITS)) {
                    if (compact) {
                        launch("embedding_forward_" + suffix(e), elementGrid((long) rows * h), 1, BLOCK, 0,
                                CudaKernels.address(gathered), rowIds, hidden, rows, h);
                    }
                    blas.gemm(logits.address(), DType.FP32, hiddenRows, weight.address(), e, rows, v, h, false, true, 1f, 0f);
                }
                if (stages.contains(LossStage.SOFTMAX)) {
                    launch("cross_entropy_rows_" + suffix(e), rows, 1, BLOCK, 0, dlogits, CudaKernels.address(lossRows.address() + 4L * r0),
                            logits, CudaKernels.address(labelsAt + 4L * r0), rows, v, gradScale);
                }
                if (dhidden != null && stages.contains(LossStage.DHIDDEN)) {
                    String g = suffix(dhidden.dtype());
                    if (compact) {
                        launch("embedding_forward_" + g, elementGrid((long) rows * h), 1, BLOCK, 0,
                                CudaKernels.address(gatheredGrad), rowIds, dhidden, rows, h);
                    }
                    long dhRows = compact ? gatheredGrad : dhidden.address() + (long) r0 * h * gb;
                    blas.gemm(dhRows, dhidden.dtype(), dlogits.address(), weight.address(), e, rows, h, v, false, false, 1f, 1f);
                    if (compact) {
                        launch("rows_scatter_" + g, elementGrid((long) rows * h), 1, BLOCK, 0, dhidden, rowIds,
                                CudaKernels.address(gatheredGrad), rows, h);
                    }
                }
                if (dweight != null && stages.contains(LossStage.DWEIGHT)) {
                    blas.gemm(dweight.address(), dweight.dtype(), dlogits.address(), hiddenRows, e, v, h, rows, true, false, 1f, 1f);
                }
            }
            float[] loss = read(lossRows);
            double sum = 0;
            for (float x : loss) {
                sum += x;
            }
            return sum / valid;
        }
    }

    /** Where the fused loss's gathered rows start in its FP32 logits buffer: after {@code rows} rows, on 256 bytes. */
    private static long gatherOffset(int rows, int v) { return align256(4L * rows * v); }

    /** The end of the gathered hidden rows (eb bytes an element) and, on 256 bytes after them, their gradient rows (gb). */
    private static long gatheredEnd(int rows, int v, int h, long eb, long gb) {
        return gatherOffset(rows, v) + align256((long) rows * h * eb) + (long) rows * h * gb;
    }

    private static long align256(long bytes) { return (bytes + 255) / 256 * 256; }

    private int[] maskedLabels;
    private Tensor maskedUpload;

    /**
     * The rows of the tokens a masked batch trains on, then their labels, on the GPU: one upload (one wait for the
     * compute stream, as the labels' own upload costs) kept while the same labels come back (every step of a run
     * that repeats its batch, each of the passes over one batch).
     */
    private Tensor validRowsAndLabels(int[] labels, int valid) {
        if (maskedUpload != null && Arrays.equals(maskedLabels, labels)) {
            return maskedUpload;
        }
        int[] both = new int[2 * valid];
        for (int t = 0, i = 0; t < labels.length; t++) {
            if (labels[t] != -100) {
                both[i] = t;
                both[valid + i++] = labels[t];
            }
        }
        Tensor t = ints("valid token rows and labels", both);
        if (maskedUpload != null) {
            maskedUpload.close(); // freed in compute-stream order after the kernels that read it
        }
        maskedLabels = labels.clone();
        maskedUpload = t;
        return t;
    }


    /**
     * AdamW in GPU memory (the optimizer placed on the device); the kernel takes its hyperparameters as doubles,
     * as ops/AdamW builds its coefficients, so both round alike. CPU-visible tensors step in Java.
     */
    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1, double beta2, double eps,
                      double weightDecay, int step) {
        if (!param.onDevice()) {
            HostArrays.adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step);
            return;
        }
        long n = param.numel();
        double bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
        launch("adamw_step_" + suffix(grad.dtype()), elementGrid((n + 3) / 4), 1, BLOCK, 0, param, grad, m, v, n, lr, beta1, beta2,
                eps, weightDecay, bc1, bc2);
    }

    /**
     * One pass of kernels/cuda/adamw.cu's adamw_step_scaled over state in GPU memory: reads the 16-bit (or FP32)
     * gradient where it is and writes the 16-bit weights, with no FP32 copy of the gradient (24 bytes of state and
     * 4–8 of gradient and weights moved per element, against about 60 through the default's copies).
     */
    @Override
    public void adamwScaled(Tensor param, Tensor grad, Tensor m, Tensor v, float unscale, float clip, Tensor weights,
                            double lr, double beta1, double beta2, double eps, double weightDecay, int t) {
        if (!param.onDevice() || !m.onDevice() || !v.onDevice()) {
            throw new IllegalArgumentException("adamwScaled on the GPU updates state in GPU memory: " + param + ", " + m
                    + ", " + v + " (the host's state steps with NativeAdamW, train/Optimizer)");
        }
        int weightsKind = weights == null ? 0 : switch (weights.dtype()) {
            case BF16 -> 1;
            case FP16 -> 2;
            case FP32 -> 3;
            case INT32 -> throw new IllegalArgumentException("adamwScaled: weights " + weights + " must be floating point");
        };
        if (!grad.onDevice() || (weights != null && !weights.onDevice())) {
            // a gradient or weights in host memory: through the device copies (the planner counts no such case)
            Device.super.adamwScaled(param, grad, m, v, unscale, clip, weights, lr, beta1, beta2, eps, weightDecay, t);
            return;
        }
        long n = param.numel();
        if (grad.numel() != n || m.numel() != n || v.numel() != n || (weights != null && weights.numel() != n)) {
            throw new IllegalArgumentException("adamwScaled: " + param + ", " + grad + ", " + m + ", " + v
                    + (weights != null ? ", " + weights : "") + " must have the same element count");
        }
        double bc1 = 1 - Math.pow(beta1, t), bc2 = 1 - Math.pow(beta2, t);
        launch("adamw_step_scaled_" + suffix(grad.dtype()), elementGrid((n + 3) / 4), 1, BLOCK, 0, param, grad, m, v, n, lr,
                beta1, beta2, eps, weightDecay, bc1, bc2, unscale, clip, weights, weightsKind);
    }

    /** GPU memory as cudaMemGetInfo reports it: free and total bytes. */
    public long[] memoryInfo() {
        try (SizeTPointer free = new SizeTPointer(1); SizeTPointer total = new SizeTPointer(1)) {
            Cuda.check(cudart.cudaMemGetInfo(free, total), "cudaMemGetInfo");
            return new long[] {free.get(), total.get()};
        }
    }

    /** Current bytes per category on the GPU, with the allocator's reserved and fragmentation figures. */
    public Map<String, Long> memorySummary() {
        Map<String, Long> m = new java.util.LinkedHashMap<>();
        memory.currentByCategory().forEach((c, b) -> m.put(c.id, b));
        m.put("reserved", gpu.reserved());
        m.put("peak_reserved", gpu.peakReserved());
        m.put("fragmentation", gpu.fragmentation());
        return m;
    }

    /**
     * The pinned host pool (offloaded weights, gradients and checkpoints, transfer staging): bytes pinned from the
     * OS, their peak, and what is pinned but not in use. Blocks are pinned once and reused, sized to the request
     * rounded to 2 MiB (no powers of two).
     */
    /**
     * Unpins and frees every cached (unused) pinned host block: a search over contexts would otherwise keep each
     * context's checkpoint buffers pinned beside the next one's (host memory grew by each trial's size until the
     * OS killed the process).
     */
    public void releaseCachedPinned() {
        synchronize(); // no copy queued still uses a cached block
        pinned.releaseCached();
    }

    public Map<String, Long> pinnedSummary() {
        Map<String, Long> m = new java.util.LinkedHashMap<>();
        m.put("reserved", pinned.reserved());
        m.put("peak_reserved", pinned.peakReserved());
        m.put("fragmentation", pinned.fragmentation());
        return m;
    }

    // ---- streams and events ----------------------------------------------------------------------------------

    /** The stream every op runs on. */
    CUstream_st computeStream() { return compute; }

    /** The stream data parallelism's collectives queue on (all of them, so that they run in the order issued). */
    CUstream_st communicationStream() { return comms; }

    private CUstream_st stream(Stream s) {
        return switch (s) {
            case COMPUTE -> compute;
            case HOST_TO_DEVICE -> toDevice;
            case DEVICE_TO_HOST -> toHost;
            case COMMUNICATION -> comms;
        };
    }

    /** A CUDA event without timing; destroyed once it has been synchronised or waited on. */
    private static final class CudaEvent implements Event {
        final CUevent_st event = new CUevent_st();
        final WaitCounter hostWaits;

        CudaEvent(WaitCounter hostWaits) { this.hostWaits = hostWaits; }

        @Override
        public void synchronize() {
            hostWaits.count();
            Cuda.check(cudart.cudaEventSynchronize(event), "cudaEventSynchronize");
            cudart.cudaEventDestroy(event);
        }

        @Override
        public void discard() {
            cudart.cudaEventDestroy(event); // CUDA frees it once the work before it is done
        }
    }

    @Override
    public Event record(Stream s) {
        CudaEvent e = new CudaEvent(hostWaits);
        Cuda.check(cudart.cudaEventCreateWithFlags(e.event, cudart.cudaEventDisableTiming), "cudaEventCreate");
        Cuda.check(cudart.cudaEventRecord(e.event, stream(s)), "cudaEventRecord");
        return e;
    }

    @Override
    public void waitFor(Stream s, Event e) {
        CudaEvent ce = (CudaEvent) e;
        Cuda.check(cudart.cudaStreamWaitEvent(stream(s), ce.event, 0), "cudaStreamWaitEvent");
        cudart.cudaEventDestroy(ce.event); // destruction is deferred by CUDA until the wait completes
    }

    @Override
    public void copyRange(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count, Stream s) {
        dev.longtune.device.Ranges.check(dst, dstOffset, src, srcOffset, count);
        if (!dst.onDevice() || !src.onDevice()) {
            throw new IllegalArgumentException("copyRange " + src.name() + " -> " + dst.name()
                    + ": both must be GPU or pinned host tensors of this device");
        }
        long b = dst.dtype().bytes;
        Cuda.check(cudart.cudaMemcpyAsync(Cuda.at(dst.address() + dstOffset * b), Cuda.at(src.address() + srcOffset * b),
                count * b, cudart.cudaMemcpyDefault, stream(s)), "copying a range of " + src.name() + " to " + dst.name());
    }

    @Override
    public void copyAsync(Tensor dst, Tensor src, Stream s) {
        if (!dst.onDevice() || !src.onDevice() || dst.dtype() != src.dtype() || s == Stream.COMPUTE) {
            copy(dst, src);
            return;
        }
        if (dst.numel() != src.numel()) {
            throw new IllegalArgumentException("copy " + src + " into " + dst + ": element counts differ");
        }
        // ordered only by the events the caller made this stream wait for: a copy that overlaps compute must not
        // first wait for everything compute has queued
        Cuda.check(cudart.cudaMemcpyAsync(Cuda.at(dst.address()), Cuda.at(src.address()), src.bytes(),
                cudart.cudaMemcpyDefault, stream(s)), "copying " + src.name() + " to " + dst.name() + " on " + s);
    }

    // ---- events, for timing -------------------------------------------------------------------------------

    @Override
    public BusyClock busyClock(Stream timed) {
        CUstream_st on = stream(timed);
        return new BusyClock() {
            // timing events in pairs; elapsed times are read (and the events destroyed) by takeSeconds
            private final List<CUevent_st> marks = new ArrayList<>();
            private final List<String> labels = new ArrayList<>(); // one per pair (null: unlabelled)
            private CUevent_st lastEnd; // the end of the last pair taken: idle time before the next pair counts from it
            private final java.util.Map<String, Double> idle = new java.util.LinkedHashMap<>();

            private void mark() {
                CUevent_st e = new CUevent_st();
                Cuda.check(cudart.cudaEventCreate(e), "cudaEventCreate");
                Cuda.check(cudart.cudaEventRecord(e, on), "cudaEventRecord");
                marks.add(e);
            }

            // a bracket left open (an exception inside it) is dropped rather than failing the next one
            @Override
            public void begin() { begin(null); }

            @Override
            public void begin(String label) {
                if (marks.size() % 2 != 0) {
                    cudart.cudaEventDestroy(marks.remove(marks.size() - 1));
                    labels.remove(labels.size() - 1);
                }
                mark();
                labels.add(label);
            }

            @Override
            public void end() {
                if (marks.size() % 2 != 0) {
                    mark();
                }
            }

            @Override
            public double takeSeconds() {
                int pairs = marks.size() / 2;
                double ms = 0;
                float[] elapsed = new float[1];
                if (pairs > 0) {
                    Cuda.check(cudart.cudaEventSynchronize(marks.get(2 * pairs - 1)), "cudaEventSynchronize");
                }
                for (int i = 0; i < pairs; i++) {
                    Cuda.check(cudart.cudaEventElapsedTime(elapsed, marks.get(2 * i), marks.get(2 * i + 1)),
                            "cudaEventElapsedTime");
                    ms += elapsed[0];
                    CUevent_st before = i == 0 ? lastEnd : marks.get(2 * i - 1);
                    String label = labels.get(i);
                    if (before != null && label != null) {
                        Cuda.check(cudart.cudaEventElapsedTime(elapsed, before, marks.get(2 * i)), "cudaEventElapsedTime");
                        idle.merge(label, Math.max(0, elapsed[0]) / 1e3, Double::sum);
                    }
                }
                List<CUevent_st> done = new ArrayList<>(marks.subList(0, 2 * pairs));
                marks.subList(0, 2 * pairs).clear();
                labels.subList(0, pairs).clear();
                if (pairs > 0) {
                    if (lastEnd != null) {
                        cudart.cudaEventDestroy(lastEnd);
                    }
                    lastEnd = done.remove(done.size() - 1); // kept for the next call's first gap
                }
                done.forEach(cudart::cudaEventDestroy);
                return ms / 1e3;
            }

            @Override
            public java.util.Map<String, Double> takeIdleSeconds() {
                java.util.Map<String, Double> out = new java.util.LinkedHashMap<>(idle);
                idle.clear();
                return out;
            }
        };
    }

    /** Milliseconds the compute stream spends on {@code work}, measured with CUDA events. */
    public float time(Runnable work) {
        CUevent_st start = new CUevent_st(), end = new CUevent_st();
        Cuda.check(cudart.cudaEventCreate(start), "cudaEventCreate");
        Cuda.check(cudart.cudaEventCreate(end), "cudaEventCreate");
        try {
            Cuda.check(cudart.cudaEventRecord(start, compute), "cudaEventRecord");
            work.run();
            Cuda.check(cudart.cudaEventRecord(end, compute), "cudaEventRecord");
            Cuda.check(cudart.cudaEventSynchronize(end), "cudaEventSynchronize");
            float[] ms = new float[1];
            Cuda.check(cudart.cudaEventElapsedTime(ms, start, end), "cudaEventElapsedTime");
            return ms[0];
        } finally {
            cudart.cudaEventDestroy(start);
            cudart.cudaEventDestroy(end);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        cudart.cudaDeviceSynchronize();
        uploads.values().forEach(u -> u.onGpu().close());
        uploads.clear();
        if (maskedUpload != null) {
            maskedUpload.close();
            maskedUpload = null;
        }
        kernels.close();
        blas.close();
        gpu.close();
        pinned.close();
        for (CUstream_st s : new CUstream_st[] {compute, toDevice, toHost, comms}) {
            cudart.cudaStreamDestroy(s);
        }
    }
}
