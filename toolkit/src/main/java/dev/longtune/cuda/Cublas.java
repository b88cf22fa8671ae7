package dev.longtune.cuda;

import dev.longtune.tensor.DType;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;

/**
 * Row-major GEMMs through cuBLAS (column-major): C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, which
 * is the same memory. Inputs BF16/FP16/FP32, FP32 accumulation (CUBLAS_COMPUTE_32F, no TF32), the output in
 * its own type.
 */
final class Cublas implements AutoCloseable {
    private final cublasContext handle = new cublasContext();
    private final FloatPointer alpha = new FloatPointer(1), beta = new FloatPointer(1);

    Cublas(CUstream_st stream) {
        Loader.load(cublas.class);
        check(cublas.cublasCreate_v2(handle), "cublasCreate");
        check(cublas.cublasSetStream_v2(handle, stream), "cublasSetStream");
    }

    static int cudaType(DType d) {
        return switch (d) {
            case FP32 -> cudart.CUDA_R_32F;
            case BF16 -> cudart.CUDA_R_16BF;
            case FP16 -> cudart.CUDA_R_16F;
            default -> throw new IllegalArgumentException("no GEMM for " + d);
        };
    }

    /**
     * Row-major c (m, n) = alpha · op(a) · op(b) + beta · c, a stored (k, m) when transposeA else (m, k),
     * b stored (n, k) when transposeB else (k, n); a and b of one type.
     */
    void gemm(long c, DType cType, long a, long b, DType abType, int m, int n, int k, boolean transposeA,
              boolean transposeB, float alphaValue, float betaValue) {
        alpha.put(alphaValue);
        beta.put(betaValue);
        int opB = transposeB ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N;
        int opA = transposeA ? cublas.CUBLAS_OP_T : cublas.CUBLAS_OP_N;
        int ldb = transposeB ? k : n, lda = transposeA ? m : k;
        check(cublas.cublasGemmEx(handle, opB, opA, n, m, k, alpha, Cuda.at(b), cudaType(abType), ldb,
                Cuda.at(a), cudaType(abType), lda, beta, Cuda.at(c), cudaType(cType), n,
                cublas.CUBLAS_COMPUTE_32F, cublas.CUBLAS_GEMM_DEFAULT), "cublasGemmEx " + m + "x" + n + "x" + k);
    }

    private static void check(int status, String what) {
        if (status != cublas.CUBLAS_STATUS_SUCCESS) {
            throw new Cuda.CudaException(what + " failed with cuBLAS status " + status);
        }
    }

    @Override
    public void close() {
        cublas.cublasDestroy_v2(handle);
        alpha.close();
        beta.close();
    }
}
