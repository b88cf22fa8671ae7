package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code max-context --measure} on the CPU engine under a byte cap: real training steps of a small Llama, bisected,
 * against the planner's max context for the same stack; the GPU run of the same command is in GpuCommandLineTest.
 */
class MaxContextMeasureTest {
    static final String CAP = "3MiB";
    @TempDir Path dir;
    Path model;

    @BeforeEach
    void smallModel() throws Exception {
        model = dir.resolve("config.json");
        Files.writeString(model, """
                {"model_type": "llama", "hidden_size": 64, "intermediate_size": 352, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 503, "tie_word_embeddings": false,
                 "rms_norm_eps": 1e-5, "rope_theta": 500000.0}""");
    }

    JsonNode measure(String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("max-context", "--measure", "--device", "cpu", "--cpu-memory-cap", CAP,
                "--model", model.toString(), "--from", "64", "--to", "8192", "--resolution", "16", "--json"));
        args.addAll(List.of(extra));
        CommandLineTest.Result r = CommandLineTest.run(args.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("planner:").contains("trained").contains("out of memory");
        return new ObjectMapper().readTree(r.out().strip());
    }

    @Test
    void theMeasuredBoundaryIsThePlannersWithinFivePercentAndTilingMovesIt() throws Exception {
        JsonNode untiled = measure("--precision", "bf16");
        long measured = untiled.get("measured_max_context").asLong(), planned = untiled.get("planned_max_context").asLong();
        assertThat(planned).isBetween(256L, 4096L); // the cap makes the search land inside [from, to]
        assertThat((double) measured).as(untiled.toString()).isCloseTo(planned, org.assertj.core.data.Offset.offset(Math.max(16, 0.05 * planned)));
        assertThat(untiled.get("first_failed").asLong()).isBetween(measured + 1, measured + 16);
        assertThat(untiled.get("stopped_by").asText()).isEqualTo("device memory");
        // every trial agrees with the boundary: what is at most the measured length trained, the rest did not
        for (JsonNode t : untiled.get("trials")) {
            assertThat(t.get("trained").asBoolean()).as(t.toString()).isEqualTo(t.get("context").asLong() <= measured);
            if (t.get("trained").asBoolean()) {
                assertThat(t.get("device_peak_bytes").asLong()).isLessThanOrEqualTo(3L << 20);
            } else {
                assertThat(t.get("failure").asText()).contains("out of memory").contains("cap");
            }
        }
        // the MLP in 64-token tiles: its wide tensors no longer grow with the context, so longer contexts train
        JsonNode tiled = measure("--precision", "bf16", "--tile", "64");
        long tiledMeasured = tiled.get("measured_max_context").asLong(), tiledPlanned = tiled.get("planned_max_context").asLong();
        assertThat(tiledMeasured).isGreaterThan(measured * 5 / 4);
        assertThat((double) tiledMeasured).as(tiled.toString()).isCloseTo(tiledPlanned, org.assertj.core.data.Offset.offset(Math.max(16, 0.05 * tiledPlanned)));
    }

    @Test
    void badRequestsAreRefusedWithWhatToDo() throws Exception {
        CommandLineTest.Result noCap = CommandLineTest.run("max-context", "--measure", "--device", "cpu", "--model", model.toString());
        assertThat(noCap.code()).isNotZero();
        assertThat(noCap.err()).contains("--cpu-memory-cap");
        CommandLineTest.Result gpuCap = CommandLineTest.run("max-context", "--measure", "--device", "cpu", "--gpu-memory-cap", "16GiB",
                "--model", model.toString());
        assertThat(gpuCap.code()).isNotZero();
        assertThat(gpuCap.err()).contains("--cpu-memory-cap");
        CommandLineTest.Result capWithoutMeasure = CommandLineTest.run("max-context", "--cpu-memory-cap", "3MiB");
        assertThat(capWithoutMeasure.code()).isNotZero();
        assertThat(capWithoutMeasure.err()).contains("--measure");
        CommandLineTest.Result eager = CommandLineTest.run("max-context", "--measure", "--device", "cpu", "--cpu-memory-cap", CAP,
                "--model", model.toString(), "--attention", "eager");
        assertThat(eager.code()).isNotZero();
        assertThat(eager.err()).contains("the engine cannot run");
    }
}
