package dev.longtune.cli;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Stacks;
import dev.longtune.cuda.Cuda;
import dev.longtune.device.CpuDevice;
import dev.longtune.device.Device;
import dev.longtune.plan.ContextSearch;
import org.junit.jupiter.api.Test;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

class DeviceOptionsTest {
    static DeviceOptions options(String device, String cap) {
        DeviceOptions o = new DeviceOptions();
        o.device = device;
        o.gpuMemoryCap = cap;
        return o;
    }

    @Test
    void cpuIsCpuAndAutoIsCpuWithoutAGpu() {
        try (Device d = options("cpu", null).open("tiny-llama-3", 2048)) {
            assertThat(d).isInstanceOf(CpuDevice.class);
        }
        assumeFalse(Cuda.available());
        try (Device d = options("auto", null).open("tiny-llama-3", 2048)) {
            assertThat(d).isInstanceOf(CpuDevice.class);
        }
    }

    @Test
    void badChoicesNameTheFix() {
        assertThatThrownBy(() -> options("tpu", null).open("tiny-llama-3", 2048))
                .hasMessageContaining("--device tpu").hasMessageContaining("cpu, cuda or auto");
        assertThatThrownBy(() -> options("cpu", "16GiB").open("tiny-llama-3", 2048))
                .hasMessageContaining("--gpu-memory-cap needs a GPU");
        DeviceOptions v100OnCpu = options("cpu", null);
        v100OnCpu.kernelsAs = "v100";
        assertThatThrownBy(() -> v100OnCpu.open("tiny-llama-3", 2048)).hasMessageContaining("--kernels-as needs a GPU")
                .hasMessageContaining("--device cpu");
        DeviceOptions unknown = options("cuda", null);
        unknown.kernelsAs = "k80";
        assertThatThrownBy(unknown::cudaOptions).hasMessageContaining("--kernels-as k80").hasMessageContaining("v100 or a6000");
    }

    @Test
    void kernelsAsAV100OrAnA6000ChooseTheirAttentionBuild() {
        DeviceOptions o = options("cuda", "16GiB");
        assertThat(o.cudaOptions().wmmaAttention()).isFalse();
        assertThat(o.cudaOptions().sharedMemoryLimit()).isZero();
        assertThat(o.kernelsNote()).isEmpty();
        o.kernelsAs = "V100";
        assertThat(o.cudaOptions().wmmaAttention()).isTrue();
        assertThat(o.cudaOptions().memoryCap()).isEqualTo(16L << 30);
        assertThat(o.kernelsNote()).contains("V100").contains("WMMA");
        o.kernelsAs = "a6000";
        assertThat(o.cudaOptions().wmmaAttention()).isFalse();
        assertThat(o.cudaOptions().sharedMemoryLimit()).isEqualTo(99 * 1024);
        assertThat(o.kernelsNote()).contains("A6000").contains("99 KiB");
    }

    @Test
    void outOfMemoryAdviceQuotesThePlannersLongestContextForTheCap() {
        String advice = PlannerAdvice.forRun("llama-3.1-8b", 48L << 30, 131072, 512L << 30);
        Matcher m = Pattern.compile("fits at most ([0-9,]+) tokens").matcher(advice);
        assertThat(m.find()).as(advice).isTrue();
        long max = Long.parseLong(m.group(1).replace(",", ""));
        assertThat(max).isPositive().isLessThan(ContextSearch.MAX_SEARCH);
        assertThat(advice).contains("asked for 131,072").contains("48.00 GiB");
        // with this machine's host RAM too small for the offloaded optimizer state, nothing fits
        assertThat(PlannerAdvice.forRun("llama-3.1-8b", 48L << 30, 4096, 8L << 30)).contains("finds no context");
        // a bigger cap fits a longer context
        String bigger = PlannerAdvice.forRun("llama-3.1-8b", 80L << 30, 131072, 512L << 30);
        Matcher m2 = Pattern.compile("fits at most ([0-9,]+) tokens").matcher(bigger);
        assertThat(m2.find()).isTrue();
        assertThat(Long.parseLong(m2.group(1).replace(",", ""))).isGreaterThan(max);
    }

    @Test
    void aModelThePlannerDoesNotKnowStillGetsAdvice() {
        assertThat(PlannerAdvice.forRun("/no/such/folder", 16L << 30, 4096)).contains("max-context");
    }
}
