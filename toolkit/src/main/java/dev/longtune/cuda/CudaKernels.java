package dev.longtune.cuda;

import dev.longtune.tensor.Tensor;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The kernels of kernels/cuda, compiled by NVRTC for this GPU's architecture and loaded as modules; entry
 * points are found by name and launched on a stream. Arguments are passed as Java values: a
 * {@link Tensor} (its device address), a {@link Long} (a pointer or a 64-bit count: see
 * {@link #address(long)}), {@link Integer}, {@link Float}, {@link Double}, a {@link TensorMap} (by value), or null (a
 * null pointer).
 */
public final class CudaKernels implements AutoCloseable {
    private final int arch;
    private final Map<String, CUmod_st> modules = new LinkedHashMap<>();
    private final Map<String, CUfunc_st> functions = new HashMap<>();
    private final List<String> failures = new ArrayList<>();
    private final java.util.concurrent.atomic.AtomicLong launched = new java.util.concurrent.atomic.AtomicLong();

    /** A device address argument, to tell it apart from a 64-bit count where that matters for reading. */
    public record Address(long value) {}

    public static Address address(long a) { return new Address(a); }

    private final FlashAttentionLaunch.Path attentionPath;

    /**
     * @param maxSharedPerBlock the opt-in shared memory per block; GPUs of sm_80+ with too little for the padded
     *     mma.sync FlashAttention tiles (sm_86/89: 99 KiB) get its 99 KiB build (FA_SMALL_SMEM), and any with too
     *     little for that the WMMA path (FA_FORCE_VOLTA_PATH)
     */
    public CudaKernels(NvrtcCompiler compiler, int arch, int maxSharedPerBlock) {
        this(compiler, arch, maxSharedPerBlock, false);
    }

    /** @param forceWmmaAttention the WMMA path whatever the GPU (tests of the Volta path on a newer GPU) */
    public CudaKernels(NvrtcCompiler compiler, int arch, int maxSharedPerBlock, boolean forceWmmaAttention) {
        this.arch = arch;
        this.attentionPath = forceWmmaAttention ? FlashAttentionLaunch.Path.WMMA
                : FlashAttentionLaunch.pathFor(arch, maxSharedPerBlock);
        for (String file : NvrtcCompiler.SOURCES) {
            if (NvrtcCompiler.class.getResource("/kernels/cuda/" + file) == null) {
                failures.add(file + ": not packaged");
                continue;
            }
            java.util.List<String> defines = java.util.List.of();
            if (file.equals("flash_attention.cu") && arch >= 80 && attentionPath != FlashAttentionLaunch.Path.MMA) {
                defines = java.util.List.of(attentionPath == FlashAttentionLaunch.Path.WMMA ? "-DFA_FORCE_VOLTA_PATH" : "-DFA_SMALL_SMEM");
            }
            byte[] cubin = compiler.cubin(file, arch, defines);
            BytePointer image = new BytePointer(cubin.length);
            image.put(cubin);
            CUmod_st module = new CUmod_st();
            Cuda.check(cudart.cuModuleLoadData(module, image), "loading the sm_" + arch + " module of " + file);
            modules.put(file, module);
        }
    }

    public int arch() { return arch; }

    /**
     * Whether attention (head dim 128, 16-bit) runs the Hopper kernels of flash_attention_sm90.cu (wgmma, compiled for sm_90a):
     * on sm_90 unless the WMMA path is forced or {@code -Dlongtune.cuda.sm90Attention=false} asks for the mma.sync
     * kernels (to compare the two on one GPU).
     */
    public boolean hopperAttention() {
        return arch == 90 && attentionPath == FlashAttentionLaunch.Path.MMA
                && !"false".equals(System.getProperty("longtune.cuda.sm90Attention"));
    }

    /** Whether flash_attention.cu runs its WMMA path here (sm_70/75, or too little shared memory). */
    public boolean flashAttentionWmmaPath() { return attentionPath == FlashAttentionLaunch.Path.WMMA; }

    /** Which build of flash_attention.cu runs here. */
    public FlashAttentionLaunch.Path attentionPath() { return attentionPath; }

    /** The entry point {@code name}; a missing one is an error that says which files were searched. */
    public synchronized CUfunc_st function(String name) {
        CUfunc_st f = functions.get(name);
        if (f != null) {
            return f;
        }
        for (CUmod_st m : modules.values()) {
            CUfunc_st candidate = new CUfunc_st();
            if (cudart.cuModuleGetFunction(candidate, m, name) == cudart.CUDA_SUCCESS) {
                functions.put(name, candidate);
                return candidate;
            }
        }
        throw new IllegalStateException("no CUDA kernel named " + name + " in kernels/cuda " + modules.keySet()
                + (failures.isEmpty() ? "" : " (not loaded: " + failures + ")"));
    }

    private final Map<String, Integer> sharedAllowed = new HashMap<>();

    /**
     * Allows a kernel more than 48 KiB of dynamic shared memory. The attribute belongs to this module's function
     * handle, so each device (each loaded module) sets it for itself.
     */
    public synchronized void allowSharedMemory(String name, int bytes) {
        if (sharedAllowed.getOrDefault(name, 0) >= bytes) {
            return;
        }
        sharedAllowed.put(name, bytes);
        Cuda.check(cudart.cuFuncSetAttribute(function(name), cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
                "allowing " + bytes + " B of shared memory to " + name);
    }

    /** Kernels launched so far (for host-overhead counts: {@link CudaDevice#launches}). */
    public long launches() { return launched.get(); }

    public void launch(String name, CUstream_st stream, int gridX, int gridY, int gridZ, int block, int sharedBytes,
                       Object... args) {
        CUfunc_st f = function(name);
        launched.incrementAndGet();
        BytePointer slots = new BytePointer(8L * Math.max(1, args.length));
        PointerPointer<?> params = new PointerPointer<>(Math.max(1, args.length));
        // tensor maps are passed by value, 128 bytes each, from 64-byte aligned host memory
        long mapCount = java.util.Arrays.stream(args).filter(TensorMap.class::isInstance).count();
        BytePointer maps = mapCount == 0 ? null : new BytePointer(TensorMap.BYTES * mapCount + 64);
        long mapAt = maps == null ? 0 : (64 - maps.address() % 64) % 64;
        for (int i = 0; i < args.length; i++) {
            long at = 8L * i;
            Object a = args[i];
            if (a instanceof TensorMap m) {
                for (int w = 0; w < m.bits().length; w++) {
                    maps.putLong(mapAt + 8L * w, m.bits()[w]);
                }
                params.put(i, Cuda.at(maps.address() + mapAt));
                mapAt += TensorMap.BYTES;
                continue;
            }
            if (a == null) {
                slots.putLong(at, 0L);
            } else if (a instanceof Tensor t) {
                slots.putLong(at, t.address());
            } else if (a instanceof Address p) {
                slots.putLong(at, p.value());
            } else if (a instanceof Long l) {
                slots.putLong(at, l);
            } else if (a instanceof Integer n) {
                slots.putInt(at, n);
            } else if (a instanceof Float x) {
                slots.putFloat(at, x);
            } else if (a instanceof Double d) {
                slots.putDouble(at, d);
            } else {
                throw new IllegalArgumentException("kernel " + name + ": argument " + i + " of type "
                        + a.getClass().getSimpleName() + " cannot be passed");
            }
            params.put(i, Cuda.at(slots.address() + at));
        }
        Cuda.check(cudart.cuLaunchKernel(f, Math.max(1, gridX), Math.max(1, gridY), Math.max(1, gridZ), block, 1, 1,
                sharedBytes, stream, params, (PointerPointer<?>) null), "launching " + name);
        slots.close();
        params.close();
        if (maps != null) {
            maps.close();
        }
    }

    @Override
    public void close() {
        modules.values().forEach(cudart::cuModuleUnload);
        modules.clear();
        functions.clear();
    }
}
