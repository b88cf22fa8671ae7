package dev.longtune.plan;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.config.Attention;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.TechniqueSet;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The activation count against PyTorch: bench/peers/hf_layer_memory.py ran one Hugging Face
 * LlamaDecoderLayer (Llama 3.1 8B shape, bf16, no Liger) under gradient checkpointing on an H200 and
 * recorded the backward peak above the step's inputs. transformers 5.17 passes GQA to SDPA without
 * repeating K/V; eager attention always repeats. The harness preallocates the incoming gradient but holds
 * the layer's output through backward: the same h·e per token, so the model's total is the measurement.
 */
class MeasuredLayerTest {
    final ModelConfig llama = ModelCatalog.get("llama-3.1-8b");
    final JsonNode measured = read();

    static JsonNode read() {
        Path p = Path.of("..", "bench", "results", "hf-layer-memory-h200.json");
        try {
            return new ObjectMapper().readTree(Files.readString(p));
        } catch (Exception e) {
            throw new IllegalStateException("cannot read " + p.toAbsolutePath() + ": " + e.getMessage(), e);
        }
    }

    TechniqueSet unfused(Attention attention) {
        return Stacks.baseline(NodeCatalog.get("1xH200"), EngineProfile.HF_DEEPSPEED)
                .withPrecision(Precision.BF16).withAttention(attention).withLiger(EnumSet.noneOf(LigerOp.class));
    }

    @Test
    void sdpaLayerMatchesTheMeasurement() {
        checkAgainstMeasurement(Attention.SDPA, false, "MLP", 0.01);
    }

    @Test
    void eagerLayerMatchesTheMeasurementWithinFivePercent() {
        checkAgainstMeasurement(Attention.EAGER, true, "attention", 0.05);
    }

    /** Every measured length: the predicted peak, at the expected moment, within the relative tolerance. */
    void checkAgainstMeasurement(Attention attention, boolean repeatKv, String moment, double tolerance) {
        ActivationModel model = new ActivationModel(llama, unfused(attention), repeatKv);
        JsonNode rows = measured.path("layer").path(attention.id);
        assertThat(rows.size()).as("measured rows for " + attention.id).isPositive();
        for (JsonNode row : rows) {
            long s = row.get("seq").asLong();
            ActivationModel.BackwardMoment peak = model.backwardPeak(1, s);
            assertThat(peak.where()).isEqualTo(moment);
            assertThat((double) peak.total()).as("%s layer at %d tokens", attention.id, s)
                    .isCloseTo(row.get("backward_peak_extra").asDouble(), within(tolerance * peak.total()));
        }
    }

    @Test
    void pinnedAllocationsAreRoundedToAPowerOfTwo() {
        long allocated = measured.path("pinned_384MiB").path("host_stats").path("allocated_bytes.current").asLong();
        assertThat(allocated).isEqualTo(Units.powerOfTwoCeil(384L << 20)).isEqualTo(512L << 20);
    }
}
