package dev.longtune.train;

/**
 * Optimizer and schedule: AdamW with decoupled weight decay (none on norms and biases, as Hugging Face's
 * Trainer does), linear warmup then cosine decay to {@code minLearningRate}, global-norm clipping,
 * gradient accumulation over micro-batches, and a seed for data order.
 */
public record TrainingConfig(double learningRate, double minLearningRate, int warmupSteps, int totalSteps,
                             double beta1, double beta2, double epsilon, double weightDecay, double maxGradNorm,
                             int gradientAccumulation, long seed) {
    public TrainingConfig {
        if (learningRate <= 0 || minLearningRate < 0 || minLearningRate > learningRate) {
            throw new IllegalArgumentException("need 0 ≤ min learning rate ≤ learning rate > 0, got " + minLearningRate
                    + " and " + learningRate);
        }
        if (totalSteps <= 0 || warmupSteps < 0 || gradientAccumulation <= 0) {
            throw new IllegalArgumentException("steps and gradient accumulation must be positive and warmup ≥ 0, got "
                    + totalSteps + ", " + gradientAccumulation + ", " + warmupSteps);
        }
    }

    public static TrainingConfig defaults(int totalSteps) {
        return new TrainingConfig(3e-4, 3e-5, Math.max(1, totalSteps / 10), totalSteps, 0.9, 0.95, 1e-8, 0.1, 1.0, 1, 1234);
    }

    /** Learning rate for step {@code step} (1-based): linear warmup, then cosine to the minimum. */
    public double learningRateAt(int step) {
        if (step <= warmupSteps) {
            return learningRate * step / Math.max(1, warmupSteps);
        }
        double progress = Math.min(1.0, (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
        return minLearningRate + 0.5 * (learningRate - minLearningRate) * (1 + Math.cos(Math.PI * progress));
    }

    public TrainingConfig withLearningRate(double lr, double minLr) {
        return new TrainingConfig(lr, minLr, warmupSteps, totalSteps, beta1, beta2, epsilon, weightDecay, maxGradNorm,
                gradientAccumulation, seed);
    }

    public TrainingConfig withSeed(long s) {
        return new TrainingConfig(learningRate, minLearningRate, warmupSteps, totalSteps, beta1, beta2, epsilon,
                weightDecay, maxGradNorm, gradientAccumulation, s);
    }

    public TrainingConfig withGradientAccumulation(int n) {
        return new TrainingConfig(learningRate, minLearningRate, warmupSteps, totalSteps, beta1, beta2, epsilon,
                weightDecay, maxGradNorm, n, seed);
    }
}
