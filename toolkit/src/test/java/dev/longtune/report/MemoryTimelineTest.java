package dev.longtune.report;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The memory timeline of one training step sees every change the trackers see, and the phases. */
class MemoryTimelineTest {
    @Test
    void aStepsTimelineHoldsItsPeakAndPhases() throws Exception {
        ModelConfig c = ModelConfig.parse("tiny", new java.io.ByteArrayInputStream("""
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 56, "num_hidden_layers": 3,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 37}""".getBytes()), "test");
        CpuDevice device = new CpuDevice();
        try (LlamaModel m = new LlamaModel(c, device, Precision.BF16, Checkpointing.OFFLOAD, ParameterPlacement.HOST)) {
            m.initialize(3);
            try (Trainer t = new Trainer(m, TrainingConfig.defaults(3), Precision.BF16)) {
                List<Batch> batch = List.of(Batch.ofDocument(new Random(2).ints(29, 0, 37).toArray()));
                t.step(batch);
                t.optimizer().awaitUpdate();
                long before = device.memory().currentTotal(), hostBefore = device.hostMemory().currentTotal();
                int layersSeen[] = {0};
                m.setLayerListener((pass, layer, layers) -> layersSeen[0]++);
                MemoryTimeline timeline;
                try (MemoryTimeline tl = MemoryTimeline.record(m)) {
                    timeline = tl;
                    t.step(batch);
                }
                // every allocation and release was sampled: the timeline's highest total is the step's peak
                assertThat(timeline.peak(true)).isEqualTo(device.memory().peakTotal()).isGreaterThan(before);
                assertThat(timeline.peak(false)).isEqualTo(device.hostMemory().peakTotal());
                List<MemoryTimeline.Sample> s = timeline.samples();
                for (int i = 1; i < s.size(); i++) {
                    assertThat(s.get(i).seconds()).isGreaterThanOrEqualTo(s.get(i - 1).seconds());
                }
                // the step gives back what it took: the last device sample is where it started
                MemoryTimeline.Sample last = s.stream().filter(MemoryTimeline.Sample::device).reduce((a, b) -> b).orElseThrow();
                assertThat(java.util.Arrays.stream(last.bytes()).sum()).isEqualTo(before);
                // offloaded checkpoints came and went on the host during the step
                assertThat(s.stream().filter(x -> !x.device())
                        .mapToLong(x -> x.bytes()[MemoryCategory.CHECKPOINTS.ordinal()]).max().orElse(0)).isPositive();
                assertThat(device.hostMemory().currentTotal()).isEqualTo(hostBefore);
                assertThat(timeline.marks()).extracting(MemoryTimeline.Mark::label)
                        .containsExactly("forward", "loss and backward", "embedding backward, optimizer", "end");
                // the model's own listener still heard every layer, and has it back afterwards
                assertThat(layersSeen[0]).isEqualTo(2 * c.numLayers());
                assertThat(timeline.table().rowCount()).isEqualTo(s.size());
                assertThat(timeline.chart(true).getTitle()).startsWith(device.name());
                assertThat(device.memory()).extracting("listener").isNull();
            }
        }
    }
}
