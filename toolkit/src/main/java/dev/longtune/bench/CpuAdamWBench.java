package dev.longtune.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.longtune.ops.AdamW;
import dev.longtune.ops.nativecpu.NativeAdamW;
import dev.longtune.ops.nativecpu.NativeCpuKernels;
import dev.longtune.ops.nativecpu.NativeCpuOps;
import dev.longtune.tensor.DType;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.ShortPointer;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The host optimizer's native AdamW (kernels/cpu/adamw.h) on N fp32 parameters off the Java heap, and the host's
 * memory bandwidth (a STREAM triad, kernels/cpu/memory_bandwidth.h) measured in the same process, so that the
 * kernel's share of the bandwidth comes from one run. The parameters are cut into tensors of a fixed size (one
 * call each, as the optimizer steps a model tensor by tensor); bench/peers/torch_cpu_adamw.py steps the same
 * tensors with torch.optim.AdamW, and bench/cpu-adamw-bench.sh runs both and writes the ratio.
 *
 * <p>Bytes counted per parameter: AdamW reads p, g, m, v (16 B) and writes p, m, v (12 B), plus 2 B when it
 * also writes the new weights in bf16 (the copy the next forward reads): 30 B. The triad counts 24 B per
 * element as STREAM does (its stores are non-temporal, so that is also what moves). Medians of the timed
 * iterations after warm-up; before timing, the kernel is checked bit for bit against ops/AdamW.
 *
 * <pre>
 *   java -cp ... dev.longtune.bench.CpuAdamWBench --params 1500000000 --tensor 58720256 --out cpu-adamw-native.json
 * </pre>
 * Threads: OMP_NUM_THREADS. Needs about 18 bytes per parameter of host memory (6 GiB for the triad, freed first).
 */
public final class CpuAdamWBench {
    private CpuAdamWBench() {}

    static final double LR = 1e-4, BETA1 = 0.9, BETA2 = 0.95, EPS = 1e-8, WEIGHT_DECAY = 0.1;

    public static void main(String[] args) throws IOException {
        long params = 1_500_000_000L;
        long tensor = 4096L * 14336;          // Llama 3.1 8B's MLP matrix
        int warmup = 2, iterations = 5;
        long triadMiB = 2048;                 // per array, three arrays
        boolean allLevels = false;
        File out = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--params" -> params = (long) Double.parseDouble(args[++i]);
                case "--tensor" -> tensor = (long) Double.parseDouble(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--iterations" -> iterations = Integer.parseInt(args[++i]);
                case "--triad-mib" -> triadMiB = Long.parseLong(args[++i]);
                case "--all-levels" -> allLevels = true;
                case "--out" -> out = new File(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i] + " (use --params N --tensor N "
                        + "--warmup K --iterations K --triad-mib MIB --all-levels --out FILE)");
            }
        }
        if (params <= 0 || tensor <= 0 || iterations <= 0 || warmup < 0) {
            throw new IllegalArgumentException("--params, --tensor and --iterations must be positive, --warmup not negative");
        }
        if (!NativeAdamW.isAvailable()) {
            throw new IllegalStateException("native CPU kernels unavailable: " + NativeCpuOps.unavailableReason()
                    + " (the toolkit jar carries libjniNativeCpuKernels.so for linux-x86_64; it needs libgomp.so.1)");
        }
        Map<String, Object> result = new LinkedHashMap<>();
        Map<String, Object> host = new LinkedHashMap<>();
        host.put("cpu", cpuModel());
        host.put("logical_cpus", Runtime.getRuntime().availableProcessors());
        host.put("omp_threads", NativeCpuKernels.maxThreads());
        host.put("omp_num_threads_env", System.getenv("OMP_NUM_THREADS"));
        host.put("simd_level", NativeAdamW.simdLevel());
        host.put("mem_total_gib", memTotalGiB());
        result.put("host", host);
        result.put("check", check());
        System.out.println("host: " + host);

        result.put("triad", triad(triadMiB * (1L << 20) / 8, warmup + 1, Math.max(iterations, 10)));
        double triadGBs = (double) ((Map<?, ?>) result.get("triad")).get("median_gb_per_s");

        long tensors = (params + tensor - 1) / tensor;
        result.put("params", params);
        result.put("tensor", tensor);
        result.put("tensors", tensors);
        result.put("hyperparameters", Map.of("lr", LR, "beta1", BETA1, "beta2", BETA2, "eps", EPS, "weight_decay", WEIGHT_DECAY));
        List<Map<String, Object>> rows = new ArrayList<>();
        result.put("adamw", rows);
        try (FloatPointer p = new FloatPointer(params); FloatPointer g = new FloatPointer(params);
             FloatPointer m = new FloatPointer(params); FloatPointer v = new FloatPointer(params);
             ShortPointer w16 = new ShortPointer(params)) {
            long t0 = System.nanoTime();
            NativeCpuKernels.fillUniform(p, params, 1, -0.05f, 0.05f);
            NativeCpuKernels.fillUniform(g, params, 2, -1e-3f, 1e-3f);
            NativeCpuKernels.fillZero(m, 4 * params);
            NativeCpuKernels.fillZero(v, 4 * params);
            NativeCpuKernels.fillZero(w16, 2 * params);
            System.out.printf("allocated and filled %.1f GiB in %.1f s%n", 18.0 * params / (1L << 30), (System.nanoTime() - t0) / 1e9);
            List<String> levels = new ArrayList<>();
            String loaded = NativeAdamW.simdLevel();
            levels.add(loaded);
            if (allLevels) {
                for (String l : List.of("avx512", "avx2", "sse2")) {
                    if (!l.equals(loaded) && NativeAdamW.useSimdLevel(l).equals(l)) {
                        levels.add(l);
                    }
                }
            }
            int[] t = {0};
            for (String level : levels) {
                NativeAdamW.useSimdLevel(level);
                for (boolean with16 : new boolean[] {true, false}) {
                    Map<String, Object> row = adamw(p, g, m, v, with16 ? w16 : null, params, tensor, warmup, iterations, t);
                    row.put("simd_level", level);
                    row.put("fraction_of_triad", (double) row.get("gb_per_s") / triadGBs);
                    rows.add(row);
                    System.out.println("adamw: " + brief(row));
                }
            }
            NativeAdamW.useSimdLevel(loaded);
            result.put("unscale_sum_squares", sumSquares(g, params, tensor, warmup, iterations, triadGBs));
        }
        String json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(result);
        if (out != null) {
            Files.writeString(out.toPath(), json + "\n");
            System.out.println("wrote " + out);
        } else {
            System.out.println(json);
        }
    }

    /** Timed passes of the AdamW over every tensor; t carries the step count across rows (state keeps moving). */
    static Map<String, Object> adamw(FloatPointer p, FloatPointer g, FloatPointer m, FloatPointer v, ShortPointer w16,
                                     long params, long tensor, int warmup, int iterations, int[] t) {
        var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, WEIGHT_DECAY);
        FloatPointer pv = new FloatPointer(p), gv = new FloatPointer(g), mv = new FloatPointer(m), vv = new FloatPointer(v);
        ShortPointer wv = w16 == null ? null : new ShortPointer(w16);
        double[] seconds = new double[iterations];
        for (int it = -warmup; it < iterations; it++) {
            t[0]++;
            long start = System.nanoTime();
            for (long off = 0; off < params; off += tensor) {
                long n = Math.min(tensor, params - off);
                pv.position(off);
                gv.position(off);
                mv.position(off);
                vv.position(off);
                if (wv != null) {
                    wv.position(off);
                }
                NativeAdamW.step(h, t[0], 1f, pv, gv, mv, vv, n, wv, DType.BF16);
            }
            double s = (System.nanoTime() - start) / 1e9;
            if (it >= 0) {
                seconds[it] = s;
            }
        }
        double median = median(seconds);
        int bytes = w16 == null ? 28 : 30;
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("output_16bit", w16 == null ? "none" : "bf16");
        row.put("bytes_per_param", bytes);
        row.put("bytes_per_param_detail", "read p,g,m,v 16 B + write p,m,v 12 B" + (w16 == null ? "" : " + bf16 weights 2 B"));
        row.put("median_s", median);
        row.put("seconds", seconds);
        row.put("params_per_s", params / median);
        row.put("gb_per_s", bytes * (double) params / median / 1e9);
        return row;
    }

    /** The fused unscale + sum of squares over the gradients (8 B per parameter: read and write g). */
    static Map<String, Object> sumSquares(FloatPointer g, long params, long tensor, int warmup, int iterations,
                                          double triadGBs) {
        FloatPointer gv = new FloatPointer(g);
        double[] seconds = new double[iterations];
        double last = 0;
        for (int it = -warmup; it < iterations; it++) {
            float scale = (it & 1) == 0 ? 0.5f : 2f;   // exact both ways, so the gradients neither drift nor underflow
            long start = System.nanoTime();
            double sum = 0;
            for (long off = 0; off < params; off += tensor) {
                gv.position(off);
                sum += NativeAdamW.unscaleAndSumSquares(gv, Math.min(tensor, params - off), scale).value();
            }
            double s = (System.nanoTime() - start) / 1e9;
            if (it >= 0) {
                seconds[it] = s;
            }
            last = sum;
        }
        double median = median(seconds);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("bytes_per_param", 8);
        row.put("median_s", median);
        row.put("seconds", seconds);
        row.put("params_per_s", params / median);
        row.put("gb_per_s", 8.0 * params / median / 1e9);
        row.put("fraction_of_triad", 8.0 * params / median / 1e9 / triadGBs);
        row.put("sum_of_squares_last", last);
        System.out.println("unscale + sum of squares: " + brief(row));
        return row;
    }

    /** STREAM triad on three arrays of n doubles each: best and median of the timed runs. */
    static Map<String, Object> triad(long n, int warmup, int iterations) {
        try (DoublePointer a = new DoublePointer(n); DoublePointer b = new DoublePointer(n); DoublePointer c = new DoublePointer(n)) {
            NativeCpuKernels.fillZero(a, 8 * n);
            NativeCpuKernels.fillZero(b, 8 * n);
            NativeCpuKernels.fillZero(c, 8 * n);
            double[] seconds = new double[iterations];
            for (int it = -warmup; it < iterations; it++) {
                long start = System.nanoTime();
                NativeCpuKernels.streamTriad(a, b, c, n, 3.0);
                double s = (System.nanoTime() - start) / 1e9;
                if (it >= 0) {
                    seconds[it] = s;
                }
            }
            double median = median(seconds), best = Arrays.stream(seconds).min().orElseThrow();
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("array_bytes", 8 * n);
            row.put("bytes_per_element", 24);
            row.put("median_gb_per_s", 24.0 * n / median / 1e9);
            row.put("best_gb_per_s", 24.0 * n / best / 1e9);
            row.put("seconds", seconds);
            System.out.println("triad: " + brief(row));
            return row;
        }
    }

    /** The kernel against ops/AdamW on an odd size, every level this CPU runs: must be bit for bit. */
    static Map<String, Object> check() {
        int n = 1_000_003;
        Random r = new Random(3);
        float[] p0 = new float[n], g = new float[n];
        for (int i = 0; i < n; i++) {
            p0[i] = (r.nextFloat() - 0.5f) * 0.1f;
            g[i] = (r.nextFloat() - 0.5f) * 2e-3f;
        }
        float[] jp = p0.clone(), jm = new float[n], jv = new float[n];
        for (int t = 1; t <= 3; t++) {
            AdamW.step(jp, g, jm, jv, LR, BETA1, BETA2, EPS, WEIGHT_DECAY, t);
        }
        String loaded = NativeAdamW.simdLevel();
        Map<String, Object> check = new LinkedHashMap<>();
        for (String level : List.of("sse2", "avx2", "avx512")) {
            if (!NativeAdamW.useSimdLevel(level).equals(level)) {
                continue;
            }
            float[] p = p0.clone(), m = new float[n], v = new float[n];
            short[] w16 = new short[n];
            var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, WEIGHT_DECAY);
            for (int t = 1; t <= 3; t++) {
                NativeAdamW.step(h, t, 1f, p, g, m, v, 0, n, w16, DType.BF16);
            }
            long differ = 0;
            for (int i = 0; i < n; i++) {
                if (Float.floatToRawIntBits(p[i]) != Float.floatToRawIntBits(jp[i]) || m[i] != jm[i] || v[i] != jv[i]
                        || w16[i] != DType.floatToBf16(p[i])) {
                    differ++;
                }
            }
            check.put(level, differ == 0 ? "bit-identical to ops/AdamW (3 steps, n = " + n + ")" : differ + " elements differ");
            if (differ != 0) {
                throw new IllegalStateException("native AdamW (" + level + ") differs from ops/AdamW in " + differ + " elements");
            }
        }
        NativeAdamW.useSimdLevel(loaded);
        System.out.println("check: " + check);
        return check;
    }

    /** A row for the console: without the per-iteration times and the byte breakdown (both are in the JSON). */
    static Map<String, Object> brief(Map<String, Object> row) {
        Map<String, Object> b = new LinkedHashMap<>(row);
        b.remove("seconds");
        b.remove("bytes_per_param_detail");
        return b;
    }

    static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    static String cpuModel() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("unknown");
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    static double memTotalGiB() {
        try {
            return Files.readAllLines(Path.of("/proc/meminfo")).stream().filter(l -> l.startsWith("MemTotal:"))
                    .mapToLong(l -> Long.parseLong(l.replaceAll("\\D", ""))).findFirst().orElse(0) / (double) (1 << 20);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }
}
