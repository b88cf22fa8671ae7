package dev.longtune.cli;

import dev.longtune.cuda.Cuda;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.CudaOptions;
import dev.longtune.device.CpuDevice;
import dev.longtune.device.Device;
import dev.longtune.plan.Units;
import picocli.CommandLine.Option;

import java.util.Locale;

/** {@code --device} and {@code --gpu-memory-cap}, shared by the commands that run the engine. */
public final class DeviceOptions {
    @Option(names = "--device", defaultValue = "auto",
            description = "cpu, cuda, or auto (cuda when a GPU is usable); default ${DEFAULT-VALUE}")
    String device;

    @Option(names = "--gpu-memory-cap", description = "cap the GPU allocator (e.g. 16GiB stands in for a V100, 48GiB for an A6000)")
    String gpuMemoryCap;

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
            if (gpuMemoryCap != null) {
                throw new IllegalArgumentException("--gpu-memory-cap needs a GPU, and this run is on the CPU ("
                        + (d.equals("cpu") ? "--device cpu" : Cuda.whyUnavailable()) + ")");
            }
            return new CpuDevice();
        }
        if (!Cuda.available()) {
            throw new IllegalArgumentException("--device cuda: " + Cuda.whyUnavailable());
        }
        long cap = capBytes();
        CudaDevice gpu = new CudaDevice(CudaOptions.defaults().withMemoryCap(cap));
        gpu.setOutOfMemoryAdvice(() -> PlannerAdvice.forRun(model, cap, context));
        return gpu;
    }
}
