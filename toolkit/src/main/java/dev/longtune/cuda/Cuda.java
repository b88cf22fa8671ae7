package dev.longtune.cuda;

import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

/**
 * Loading the CUDA runtime through JavaCPP, error checks, and raw addresses as JavaCPP pointers. The presets'
 * JNI wrappers link against the machine's CUDA libraries (LD_LIBRARY_PATH, e.g. /usr/local/cuda/lib64).
 */
public final class Cuda {
    private Cuda() {}

    private static volatile String unavailable;
    private static volatile boolean probed;

    /** Whether a CUDA GPU can be used here; {@link #whyUnavailable()} says why not. */
    public static boolean available() {
        probe();
        return unavailable == null;
    }

    /** How many GPUs this process sees (0 where CUDA is unavailable). */
    public static int deviceCount() {
        if (!available()) {
            return 0;
        }
        int[] n = new int[1];
        return cudart.cudaGetDeviceCount(n) == cudart.cudaSuccess ? n[0] : 0;
    }

    public static String whyUnavailable() {
        probe();
        return unavailable;
    }

    private static synchronized void probe() {
        if (probed) {
            return;
        }
        probed = true;
        try {
            Loader.load(cudart.class);
            int[] n = new int[1];
            int err = cudart.cudaGetDeviceCount(n);
            if (err != cudart.cudaSuccess) {
                unavailable = "cudaGetDeviceCount failed: " + errorString(err);
            } else if (n[0] == 0) {
                unavailable = "no CUDA GPU is visible";
            }
        } catch (Throwable t) {
            unavailable = "the CUDA runtime did not load (" + t.getClass().getSimpleName() + ": " + t.getMessage()
                    + "); is /usr/local/cuda/lib64 on LD_LIBRARY_PATH?";
        }
    }

    static String errorString(int err) {
        try {
            return cudart.cudaGetErrorString(err).getString() + " (" + err + ")";
        } catch (Throwable t) {
            return "CUDA error " + err;
        }
    }

    /** Throws with {@code what} and CUDA's message unless {@code err} is cudaSuccess (also CUDA_SUCCESS). */
    public static void check(int err, String what) {
        if (err != cudart.cudaSuccess) {
            throw new CudaException(what + " failed: " + errorString(err));
        }
    }

    /** A JavaCPP pointer at a raw address (device, or pinned host). */
    public static Pointer at(long address) { return new Address(address); }

    private static final class Address extends Pointer {
        Address(long a) { this.address = a; }
    }

    /** A failed CUDA call. */
    public static final class CudaException extends RuntimeException {
        public CudaException(String m) { super(m); }
    }
}
