package dev.longtune.plan;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;

import java.util.List;

/** The hf-deepspeed profile's predictions next to the study's measurements, with relative errors. */
public final class Validation {
    /** Tolerances the issue sets: peak VRAM per GPU within 10 %, peak host RAM within 15 %. */
    public static final double GPU_TOLERANCE = 0.10, HOST_TOLERANCE = 0.15;

    public record Row(StudyReference.Row study, MemoryPlan plan, Throughput throughput) {
        public double predictedVramMiB() { return Units.mib(plan.gpuPeakBytes()); }

        public double predictedHostGiB() { return Units.gib(plan.hostPeakBytes()); }

        public double gpuError() { return predictedVramMiB() / study.peakVramMiB() - 1; }

        public double hostError() { return predictedHostGiB() / study.peakHostGiB() - 1; }

        public double tokensRatio() { return throughput.tokensPerSecond() / study.tokensPerSecond(); }

        public boolean withinTolerance() {
            return Math.abs(gpuError()) <= GPU_TOLERANCE && Math.abs(hostError()) <= HOST_TOLERANCE;
        }
    }

    private Validation() {}

    public static List<Row> run() {
        ModelConfig model = ModelCatalog.get(StudyReference.MODEL);
        MemoryPlanner planner = new MemoryPlanner(EngineProfile.HF_DEEPSPEED);
        ThroughputModel speed = new ThroughputModel(EngineProfile.HF_DEEPSPEED);
        return StudyReference.ROWS.stream().map(r -> {
            TechniqueSet stack = Stacks.study(r.node(), EngineProfile.HF_DEEPSPEED);
            return new Row(r, planner.plan(model, r.node(), stack, r.context()),
                    speed.estimate(model, r.node(), stack, r.context()));
        }).toList();
    }
}
