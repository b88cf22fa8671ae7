package dev.longtune.plan;

/**
 * A predicted step time and its parts, per GPU, in seconds.
 *
 * @param flopsPerToken      training FLOPs per token including recompute
 * @param computeSeconds     matmuls and attention at the stated efficiencies
 * @param transferSeconds    host-link and GPU-to-GPU traffic before overlap
 * @param exposedSeconds     the part of the traffic that compute does not hide
 * @param optimizerSeconds   the optimizer step (CPU Adam when offloaded), once per global batch
 */
public record Throughput(double flopsPerToken, double computeSeconds, double transferSeconds,
                         double exposedSeconds, double optimizerSeconds, double tokensPerSecond) {
}
