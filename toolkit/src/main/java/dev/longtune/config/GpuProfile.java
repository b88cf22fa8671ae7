package dev.longtune.config;

/**
 * One GPU model: memory, dense tensor-core throughput, HBM bandwidth and the host link.
 *
 * @param memoryBytes       usable device memory, binary units (16 GiB for a V100 16GB)
 * @param fp16Tflops        dense FP16 tensor TFLOP/s with FP32 accumulation (vendor datasheet, no sparsity)
 * @param bf16Tflops        dense BF16 tensor TFLOP/s; 0 where BF16 is not supported
 * @param hbmGBps           device memory bandwidth, GB/s
 * @param pcieGen           PCIe generation of the host link
 * @param hostLinkGBps      pinned host-to-device copy rate one way, GB/s, as measured on such links
 *                          (PCIe 3.0 x16 ≈ 12, 4.0 ≈ 24, 5.0 ≈ 55 as measured on the H200 machine)
 * @param nvlinkGBps        GPU-to-GPU NVLink bandwidth per GPU, GB/s; 0 without NVLink
 * @param computeCapability e.g. 70 for sm_70
 * @param sms               streaming multiprocessors (datasheet / whitepaper)
 * @param maxThreadsPerSm   resident threads per SM (CUDA C++ Programming Guide, "Technical Specifications per
 *                          Compute Capability": 2,048 on sm_70, sm_80, sm_90; 1,536 on sm_86, sm_89); with
 *                          {@code sms} it sizes the local memory every CUDA context reserves
 */
public record GpuProfile(
        String name,
        String description,
        long memoryBytes,
        double fp16Tflops,
        double bf16Tflops,
        double hbmGBps,
        int pcieGen,
        double hostLinkGBps,
        double nvlinkGBps,
        int computeCapability,
        int sms,
        int maxThreadsPerSm) {

    /** The name of the pseudo-GPU that stands for the CPU engine: its "device memory" is host memory. */
    public static final String CPU = "CPU";

    public boolean isCpu() { return name.equals(CPU); }

    /** BF16 on Ampere and newer; the CPU engine emulates it (values rounded to BF16, FP32 arithmetic). */
    public boolean supportsBf16() { return isCpu() || bf16Tflops > 0 && computeCapability >= 80; }

    /** The official FlashAttention-2 runs on Ampere (sm_80) and newer only. */
    public boolean supportsOfficialFlashAttention2() { return computeCapability >= 80; }

    /** The same GPU with another memory size (e.g. a V100 stood in for by a capped H200). */
    public GpuProfile withMemory(String newName, long bytes) {
        return new GpuProfile(newName, description, bytes, fp16Tflops, bf16Tflops, hbmGBps, pcieGen, hostLinkGBps,
                nvlinkGBps, computeCapability, sms, maxThreadsPerSm);
    }

    public double memoryGiB() { return memoryBytes / (double) (1L << 30); }
}
