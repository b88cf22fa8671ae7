package dev.longtune.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every kernels/cuda source compiles for every architecture the present compiler accepts (NVRTC where its
 * library loads, as on the GPU machine; else nvcc where it is on the PATH, as on the CI machine), and the Volta
 * path (sm_70; sm_75 stands in where sm_70 is not accepted) uses only Volta instructions: no ldmatrix,
 * cp.async, m16n8k* mma, bf16 arithmetic or wgmma. The FA_FORCE_VOLTA_PATH build is held to the same rule at sm_80;
 * the FA_SMALL_SMEM build that sm_86/89 cards get compiles at sm_86 and is still mma.sync.
 */
class KernelArchitectureTest {
    static final int[] WANTED = {70, 75, 80, 86, 90};
    static final Pattern NEWER_THAN_VOLTA = Pattern.compile(
            "\\bldmatrix\\b|\\bcp\\.async\\b|mma\\.sync\\.aligned\\.m16n8k\\d+|\\bwgmma\\b|\\.bf16(x2)?\\b|\\bcp\\.async\\.bulk\\b");

    interface Compiler {
        String ptx(String file, int arch, List<String> options) throws Exception;

        List<Integer> archs() throws Exception;
    }

    static Compiler compiler() {
        try {
            NvrtcCompiler nvrtc = new NvrtcCompiler(NvrtcCompiler.defaultCacheDir());
            return new Compiler() {
                public String ptx(String f, int a, List<String> o) { return nvrtc.ptx(f, a, o); }

                public List<Integer> archs() { return nvrtc.supportedArchitectures(); }
            };
        } catch (Throwable nvrtcMissing) {
            if (!nvccPresent()) {
                return null;
            }
            return new Compiler() {
                public String ptx(String f, int a, List<String> o) throws Exception { return nvcc(f, a, o); }

                public List<Integer> archs() throws Exception { return nvccArchs(); }
            };
        }
    }

    static boolean nvccPresent() {
        try {
            return new ProcessBuilder("nvcc", "--version").redirectErrorStream(true).start().waitFor(30, TimeUnit.SECONDS);
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    static List<Integer> nvccArchs() throws Exception {
        Process p = new ProcessBuilder("nvcc", "--list-gpu-arch").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(60, TimeUnit.SECONDS);
        List<Integer> archs = new ArrayList<>();
        Matcher m = Pattern.compile("compute_(\\d+)\\b").matcher(out);
        while (m.find()) {
            archs.add(Integer.parseInt(m.group(1)));
        }
        return archs;
    }

    static String nvcc(String file, int arch, List<String> options) throws Exception {
        Path dir = Files.createTempDirectory("kernel-ptx");
        Path src = dir.resolve(file), out = dir.resolve(file + ".ptx");
        Files.writeString(src, NvrtcCompiler.source(file));
        List<String> cmd = new ArrayList<>(List.of("nvcc", "-std=c++17", "--ptx", "-arch=compute_" + NvrtcCompiler.archName(file, arch), "-o",
                out.toString(), src.toString()));
        cmd.addAll(options);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(300, TimeUnit.SECONDS) && p.exitValue() == 0).as("nvcc " + file + " compute_" + arch + ":\n" + log).isTrue();
        return Files.readString(out);
    }

    static boolean ptxasPresent() {
        try {
            return new ProcessBuilder("ptxas", "--version").redirectErrorStream(true).start().waitFor(30, TimeUnit.SECONDS);
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /**
     * The Hopper attention's speed rests on wgmma groups staying in flight across branches and steps; where ptxas
     * cannot prove that safe it serialises every wgmma of the kernel and only warns (C7510/C7520), and at 255
     * registers a small edit could also spill. Both would cost a third of the backward's speed without failing a
     * correctness check, so assembling the sm_90a PTX must give neither.
     */
    @Test
    void theHopperKernelsAssembleWithoutSerialisedWgmmaOrSpills() throws Exception {
        Compiler c = compiler();
        assumeTrue(c != null && c.archs().contains(90) && ptxasPresent(), "no compiler for compute_90a, or no ptxas");
        Path dir = Files.createTempDirectory("kernel-sass");
        Path ptx = dir.resolve("fa90.ptx");
        Files.writeString(ptx, c.ptx("flash_attention_sm90.cu", 90, List.of()));
        Process p = new ProcessBuilder("ptxas", "-arch=sm_90a", "-v", ptx.toString(), "-o", dir.resolve("fa90.cubin").toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(300, TimeUnit.SECONDS) && p.exitValue() == 0).as("ptxas:\n" + log).isTrue();
        assertThat(log).as("ptxas sm_90a").doesNotContain("C7510").doesNotContain("C7520").doesNotContain("serialized");
        Matcher spills = Pattern.compile("(\\d+) bytes spill stores").matcher(log);
        int entries = 0;
        while (spills.find()) {
            entries++;
            assertThat(Integer.parseInt(spills.group(1))).as("spill stores:\n" + log).isZero();
        }
        assertThat(entries).as("ptxas -v reports every entry point").isGreaterThanOrEqualTo(6);
    }

    /** PTX instructions only: comments, directives naming entry points (which contain "_bf16") are left out. */
    static List<String> offending(String ptx) {
        List<String> bad = new ArrayList<>();
        for (String line : ptx.split("\n")) {
            String s = line.strip();
            if (s.startsWith("//") || s.startsWith(".entry") || s.startsWith(".visible") || s.startsWith(".func")) {
                continue;
            }
            if (NEWER_THAN_VOLTA.matcher(s).find()) {
                bad.add(s);
            }
        }
        return bad;
    }

    @Test
    void everyKernelCompilesForEachArchitectureAndTheVoltaPathStaysVolta() throws Exception {
        Compiler c = compiler();
        assumeTrue(c != null, "neither NVRTC nor nvcc is present");
        List<Integer> supported = c.archs();
        List<Integer> archs = new ArrayList<>();
        for (int a : WANTED) {
            if (supported.contains(a)) {
                archs.add(a);
            }
        }
        int volta = supported.contains(70) ? 70 : 75;
        assertThat(supported).as("the compiler accepts sm_70 or sm_75").contains(volta);
        for (String file : NvrtcCompiler.SOURCES) {
            for (int arch : archs) {
                String ptx = c.ptx(file, arch, List.of());
                assertThat(ptx).as(file + " compute_" + arch).contains(".entry");
                if (NvrtcCompiler.ARCH_SPECIFIC.contains(file)) {
                    // the Hopper kernel is built from wgmma on sm_90a and is a stub that traps (never launched)
                    // everywhere else; the real kernels trap only on a wrong launch (check_launch)
                    String stub = "trap; // not built for sm_90a";
                    if (arch == 90) {
                        assertThat(ptx).as(file + " compute_90a").contains("wgmma.mma_async").doesNotContain(stub);
                    } else {
                        assertThat(ptx).as(file + " compute_" + arch).doesNotContain("wgmma").contains(stub);
                    }
                }
                if (arch == volta) {
                    assertThat(offending(ptx)).as(file + " on the Volta path uses newer instructions").isEmpty();
                }
            }
            if (file.equals("flash_attention.cu") && supported.contains(80)) {
                String forced = c.ptx(file, 80, List.of("-DFA_FORCE_VOLTA_PATH"));
                List<String> fp16Only = new ArrayList<>();
                for (String line : offending(forced)) {
                    if (!line.contains(".bf16")) {
                        fp16Only.add(line); // bf16 WMMA is fine on sm_80+; nothing else newer is
                    }
                }
                assertThat(fp16Only).as("FA_FORCE_VOLTA_PATH build uses mma.sync/ldmatrix/cp.async").isEmpty();
            }
            if (file.equals("flash_attention.cu") && supported.contains(86)) {
                // the 99 KiB build an A6000 runs: still the mma.sync kernels
                String small = c.ptx(file, 86, List.of("-DFA_SMALL_SMEM"));
                assertThat(small).as("FA_SMALL_SMEM build").contains("mma.sync.aligned.m16n8k16").contains("ldmatrix");
            }
        }
    }

    @Test
    void theCheckCatchesNewerInstructions() {
        assertThat(offending("    ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%r1, %r2, %r3, %r4}, [%r5];")).hasSize(1);
        assertThat(offending("    mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1}, {%r1}, {%r2}, {%f2};")).hasSize(1);
        assertThat(offending("    cp.async.cg.shared.global [%r1], [%rd1], 16;")).hasSize(1);
        assertThat(offending("    wmma.mma.sync.aligned.row.col.m16n16k16.f32.f16.f16.f32 {%f1}, {%r1}, {%r2}, {%f2};")).isEmpty();
        assertThat(offending(".visible .entry flash_attention_forward_bf16_d64(")).isEmpty();
    }
}
