package dev.longtune.config;

/**
 * A machine: its GPUs, host RAM and CPU cores.
 *
 * @param hostMemoryGBps host DRAM bandwidth (read + write) that a CPU optimizer can stream at
 */
public record NodeProfile(String name, GpuProfile gpu, int gpus, long hostRamBytes, int cores,
                          double hostMemoryGBps) {

    public NodeProfile {
        if (gpus <= 0) {
            throw new IllegalArgumentException(name + ": GPU count must be positive, was " + gpus);
        }
    }

    /** The same machine using only {@code n} of its GPUs (e.g. the study's 1×A100 run on its 8×A100 node). */
    public NodeProfile withGpus(int n) {
        if (n <= 0 || n > gpus) {
            throw new IllegalArgumentException(name + " has " + gpus + " GPUs; cannot use " + n);
        }
        return n == gpus ? this : new NodeProfile(n + "x" + gpu.name() + " (of " + name + ")", gpu, n,
                hostRamBytes, cores, hostMemoryGBps);
    }

    public NodeProfile withHostRam(long bytes) {
        return new NodeProfile(name, gpu, gpus, bytes, cores, hostMemoryGBps);
    }

    public double hostRamGiB() { return hostRamBytes / (double) (1L << 30); }
}
