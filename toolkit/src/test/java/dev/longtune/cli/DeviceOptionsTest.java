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
