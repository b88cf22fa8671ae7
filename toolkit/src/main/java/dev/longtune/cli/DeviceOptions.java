package dev.longtune.cli;

import dev.longtune.cuda.Cuda;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.CudaOptions;
import dev.longtune.device.CpuDevice;
import dev.longtune.device.Device;
import dev.longtune.plan.Units;
import picocli.CommandLine.Option;

import java.util.Locale;

/** {@code --device}, {@code --gpu-memory-cap} and {@code --kernels-as}, shared by the commands that run the engine. */
public final class DeviceOptions {
    @Option(names = "--device", defaultValue = "auto",
            description = "cpu, cuda, or auto (cuda when a GPU is usable); default ${DEFAULT-VALUE}")
    String device;

    @Option(names = "--gpu-memory-cap", description = "cap the GPU allocator (e.g. 16GiB stands in for a V100, 48GiB for an A6000)")
    String gpuMemoryCap;

    @Option(names = "--kernels-as", paramLabel = "GPU",
            description = "choose GPU kernels as this GPU would: v100 (FlashAttention's WMMA path) or a6000 (its 99 KiB "
                    + "build); with --gpu-memory-cap a newer GPU then stands in for that one")
    String kernelsAs;

    /** How to open each GPU: the cap, and the kernels chosen as --kernels-as says. */
    CudaOptions cudaOptions() {
        CudaOptions o = CudaOptions.defaults().withMemoryCap(capBytes());
        if (kernelsAs == null) {
            return o;
        }
        return switch (kernelsAs.toLowerCase(Locale.ROOT)) {
            case "v100" -> o.withWmmaAttention();
            case "a6000" -> o.withSharedMemoryLimit(CudaOptions.A6000_SHARED_PER_BLOCK);
            default -> throw new IllegalArgumentException("--kernels-as " + kernelsAs
                    + ": use v100 or a6000 (or leave it out for this GPU's own kernels)");
        };
    }

    /** What --kernels-as chose, for the run's log ("" when it was not given). */
    String kernelsNote() {
        return kernelsAs == null ? "" : "kernels as on " + switch (kernelsAs.toLowerCase(Locale.ROOT)) {
            case "v100" -> "a V100 (FlashAttention: WMMA path)";
            case "a6000" -> "an A6000 (FlashAttention: mma.sync, 99 KiB build)";
            default -> kernelsAs;
        };
    }

    /** The GPU allocator's cap in bytes, or Long.MAX_VALUE when none was given. */
    long capBytes() { return gpuMemoryCap == null ? Long.MAX_VALUE : Units.parseBytes(gpuMemoryCap); }

    /** Whether --device asks for GPUs (auto: where one is usable). */
    boolean wantsGpu() {
        return switch (device.toLowerCase(Locale.ROOT)) {
            case "cpu" -> false;
            case "cuda", "gpu" -> true;
            case "auto" -> Cuda.available();
            default -> throw new IllegalArgumentException("--device " + device + ": use cpu, cuda or auto");
        };
    }

    /** The device asked for; the model and context go into an out-of-memory error's planner advice. */
    Device open(String model, long context) {
        String d = device.toLowerCase(Locale.ROOT);
        boolean cuda = switch (d) {
            case "cpu" -> false;
            case "cuda", "gpu" -> true;
            case "auto" -> Cuda.available();
            default -> throw new IllegalArgumentException("--device " + device + ": use cpu, cuda or auto");
        };
        if (!cuda) {
            for (String[] gpuOnly : new String[][] {{"--gpu-memory-cap", gpuMemoryCap}, {"--kernels-as", kernelsAs}}) {
                if (gpuOnly[1] != null) {
                    throw new IllegalArgumentException(gpuOnly[0] + " needs a GPU, and this run is on the CPU ("
                            + (d.equals("cpu") ? "--device cpu" : Cuda.whyUnavailable()) + ")");
                }
            }
            return new CpuDevice();
        }
        if (!Cuda.available()) {
            throw new IllegalArgumentException("--device cuda: " + Cuda.whyUnavailable());
        }
        long cap = capBytes();
        CudaDevice gpu = new CudaDevice(cudaOptions());
        gpu.setOutOfMemoryAdvice(() -> PlannerAdvice.forRun(model, cap, context));
        return gpu;
    }
}
