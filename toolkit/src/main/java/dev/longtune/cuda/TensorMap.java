package dev.longtune.cuda;

import org.bytedeco.cuda.cudart.CUtensorMap;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;

/**
 * A TMA tensor map (the driver's {@code CUtensorMap}): 128 bytes the host encodes and a kernel takes by value, from
 * which the copy engine fetches boxes of a tensor into shared memory. {@link CudaKernels#launch} passes it as a
 * {@code __grid_constant__} parameter; the Hopper attention forward fetches its K and V tiles this way, the backward
 * its Q and dO
 * (kernels/cuda/flash_attention_sm90.md).
 */
public record TensorMap(long[] bits) {
    public static final int BYTES = 128;

    public TensorMap {
        if (bits.length != BYTES / 8) {
            throw new IllegalArgumentException("a tensor map is " + BYTES + " bytes, not " + 8 * bits.length);
        }
        bits = bits.clone();
    }

    /**
     * Boxes of {@code boxDims} values × one head × {@code boxRows} rows of a (rows, heads, dim) tensor of 16-bit
     * values at {@code address}, laid out in shared memory with the 128-byte swizzle wgmma reads, zero-filled past
     * the last row. {@code boxDims} × 2 bytes may be at most 128 (the swizzle's span).
     */
    static TensorMap rowsOfHeads16(String name, long address, int rows, int heads, int dim, int boxDims, int boxRows) {
        if (boxDims < 8 || boxDims * 2 > 128 || boxDims % 8 != 0 || boxRows < 1 || boxRows > 256 || rows < 1 || heads < 1
                || address % 16 != 0 || dim * 2 % 16 != 0) {
            throw new IllegalArgumentException("no tensor map for " + name + " (" + rows + " rows × " + heads + " heads × "
                    + dim + " at address " + address + ") with boxes of " + boxDims + " values × " + boxRows + " rows: "
                    + "a box row must be 16 to 128 bytes in steps of 16, at most 256 rows, the tensor 16-byte aligned");
        }
        // the driver wants the map 64-byte aligned; JavaCPP's new CUtensorMap() is only 16-byte aligned
        try (BytePointer raw = new BytePointer(BYTES + 64)) {
            CUtensorMap map = new CUtensorMap(Cuda.at(raw.address() + (64 - raw.address() % 64) % 64));
            Cuda.check(cudart.cuTensorMapEncodeTiled(map, cudart.CU_TENSOR_MAP_DATA_TYPE_UINT16, 3, Cuda.at(address),
                    new long[] {dim, heads, rows}, new long[] {2L * dim, 2L * dim * heads},
                    new int[] {boxDims, 1, boxRows}, new int[] {1, 1, 1}, cudart.CU_TENSOR_MAP_INTERLEAVE_NONE,
                    cudart.CU_TENSOR_MAP_SWIZZLE_128B, cudart.CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                    cudart.CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE), "encoding the tensor map of " + name);
            long[] bits = new long[BYTES / 8];
            for (int i = 0; i < bits.length; i++) {
                bits[i] = map.opaque(i);
            }
            return new TensorMap(bits);
        }
    }
}
