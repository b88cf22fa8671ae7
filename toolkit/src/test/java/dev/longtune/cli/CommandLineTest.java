package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.assertj.core.api.Assertions.assertThat;

class CommandLineTest {
    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cli = LongtuneCommand.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void planJsonHasTheDocumentedShape() throws Exception {
        Result r = run("plan", "--model", "llama-3.1-8b", "--node", "study-8xV100", "--context", "65536",
                "--stack", "study", "--json");
        assertThat(r.code()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("model").asText()).isEqualTo("llama-3.1-8b");
        assertThat(j.get("node").asText()).isEqualTo("study-8xV100");
        assertThat(j.get("context").asLong()).isEqualTo(65536);
        assertThat(j.get("profile").asText()).isEqualTo("hf-deepspeed");
        assertThat(j.at("/gpu/peak_bytes").isIntegralNumber()).isTrue();
        assertThat(j.at("/gpu/peak_phase").asText()).isEqualTo("backward");
        assertThat(j.at("/host/peak_bytes").isIntegralNumber()).isTrue();
        long sum = 0;
        for (MemoryCategory c : MemoryCategory.values()) {
            assertThat(j.at("/gpu/by_category/" + c.id).isIntegralNumber()).as(c.id).isTrue();
            assertThat(j.at("/host/by_category/" + c.id).isIntegralNumber()).as(c.id).isTrue();
            sum += j.at("/gpu/by_category/" + c.id).asLong();
        }
        assertThat(sum).isEqualTo(j.at("/gpu/peak_bytes").asLong());
        assertThat(j.get("tokens_per_s").asDouble()).isPositive();
    }

    @Test
    void flagsOverrideTheNamedStack() throws Exception {
        Result study = run("plan", "--node", "study-4xA6000", "--context", "32K", "--json");
        Result pool = run("plan", "--node", "study-4xA6000", "--context", "32K", "--pinned", "pool",
                "--profile", "longtune", "--micro-batch", "2", "--json");
        JsonNode a = new ObjectMapper().readTree(study.out()), b = new ObjectMapper().readTree(pool.out());
        assertThat(b.get("stack").asText()).contains("pinned=pool").contains("mb=2");
        assertThat(b.get("profile").asText()).isEqualTo("longtune");
        assertThat(b.at("/gpu/peak_bytes").asLong()).isGreaterThan(a.at("/gpu/peak_bytes").asLong());
    }

    @Test
    void textPlanShowsTermsAndFormulas() {
        Result r = run("plan", "--context", "32768");
        assertThat(r.out()).contains("GPU peak").contains("backward").contains("gathered layer")
                .contains("e·Lp = 2 × 218,112,000").contains("Host peak").contains("Throughput");
    }

    @Test
    void badInputSaysWhatToFix() {
        Result model = run("plan", "--model", "gpt-5", "--context", "1024");
        assertThat(model.code()).isEqualTo(2);
        assertThat(model.err()).contains("gpt-5").contains("llama-3.1-8b");
        Result node = run("plan", "--node", "9xP100", "--context", "1024");
        assertThat(node.err()).contains("P100").contains("V100-SXM2-16GB");
        Result bf16 = run("plan", "--node", "study-8xV100", "--precision", "bf16", "--context", "1024");
        assertThat(bf16.code()).isEqualTo(2);
        assertThat(bf16.err()).contains("BF16").contains("--precision fp16");
        Result context = run("plan", "--context", "-5");
        assertThat(context.err()).contains("positive");
        Result words = run("plan", "--context", "lots");
        assertThat(words.err()).contains("'lots'").contains("64K");
        Result paramOffload = run("plan", "--context", "1024", "--zero", "2");
        assertThat(paramOffload.err()).contains("parameter offload needs ZeRO stage 3");
    }

    @Test
    void maxContextAndCheapest() throws Exception {
        Result max = run("max-context", "--node", "study-4xA6000", "--stack", "all", "--json");
        assertThat(max.code()).isZero();
        assertThat(new ObjectMapper().readTree(max.out()).get("max_context").asLong()).isGreaterThanOrEqualTo(128_000);
        Result cheap = run("cheapest", "--node", "study-4xA6000", "--context", "128K");
        assertThat(cheap.code()).isZero();
        assertThat(cheap.out()).contains("cheapest first").contains("offloads");
    }

    @Test
    void validateAndDeepSpeedEstimate() {
        Result v = run("validate");
        assertThat(v.code()).isZero();
        assertThat(v.out()).contains("8×V100 16GB, FP16, no FA2").contains("all rows within");
        Result ds = run("deepspeed-estimate", "--gpus-per-node", "4");
        assertThat(ds.out()).contains("HW: Setup with 1 node, 4 GPUs per node.").contains("201.93GB");
    }
}
