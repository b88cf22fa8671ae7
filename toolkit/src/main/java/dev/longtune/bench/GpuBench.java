package dev.longtune.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.CudaOptions;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.ops.Rope;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import dev.longtune.train.Optimizer;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.IntStream;

/**
 * Our side of the GPU benchmark (bench/gpu-bench.sh runs it next to bench/peers/torch_peer.py on the same
 * GPU): each op is checked against a higher-precision reference on sampled rows before it is timed with CUDA
 * events (median of several runs). Rows use the peer's schema: impl, op, tokens, dtype, median_ms, tflops,
 * peak_bytes (what the op adds), rel_err, note.
 *
 * <p>Usage: {@code GpuBench --out FILE [--quick] [--only op,op]}
 */
public final class GpuBench {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private final CudaDevice dev;
    private final List<Map<String, Object>> rows = new ArrayList<>();
    private final File out;
    private final Random random = new Random(42);
    /** The 2-layer step as `train` sets it up where the GPU has the room (false: every layer recomputed, in turn). */
    private boolean trainChoices = true;

    GpuBench(CudaDevice dev, File out) {
        this.dev = dev;
        this.out = out;
    }

    public static void main(String[] args) throws IOException {
        File out = new File("longtune.json");
        boolean quick = false;
        List<String> only = null;
        int[] trainTokens = null;
        boolean recomputeEveryLayer = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--out" -> out = new File(args[++i]);
                case "--quick" -> quick = true;
                case "--only" -> only = Arrays.asList(args[++i].split(","));
                case "--train-tokens" -> trainTokens = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--recompute-every-layer" -> recomputeEveryLayer = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i] + " (use --out FILE --quick --only a,b "
                        + "--train-tokens 8192,32768 --recompute-every-layer)");
            }
        }
        try (CudaDevice dev = new CudaDevice(CudaOptions.defaults())) {
            System.out.println("device: " + dev.name());
            GpuBench b = new GpuBench(dev, out);
            b.trainChoices = !recomputeEveryLayer;
            List<String> sel = only;
            java.util.function.Predicate<String> want = op -> sel == null || sel.contains(op);
            int[] attention = quick ? new int[] {4096} : new int[] {4096, 16384, 65536, 131072};
            for (int t : attention) {
                if (want.test("attention_fwd") || want.test("attention_fwd_bwd")) {
                    b.guard("attention", t, () -> b.attention(t));
                }
            }
            for (int t : quick ? new int[] {32768} : new int[] {32768, 131072}) {
                if (want.test("linear_cross_entropy")) {
                    b.guard("linear_cross_entropy", t, () -> b.linearCrossEntropy(t));
                }
            }
            if (want.test("rms_norm_fwd_bwd")) b.guard("rms_norm_fwd_bwd", 32768, () -> b.rmsNorm(32768));
            if (want.test("swiglu_fwd_bwd")) b.guard("swiglu_fwd_bwd", 32768, () -> b.swiglu(32768));
            if (want.test("rope_fwd_bwd")) b.guard("rope_fwd_bwd", 32768, () -> b.rope(32768));
            if (want.test("gemm")) b.guard("gemm", 8192, b::gemm);
            int[] sizes = trainTokens != null ? trainTokens : quick ? new int[] {8192} : new int[] {8192, 32768, 131072};
            for (int t : sizes) {
                if (want.test("train_step_2layer")) {
                    b.guard("train_step_2layer", t, () -> b.trainStep(t, Optimizer.Placement.DEVICE, false));
                }
                if (want.test("train_step_2layer_keep_attention")) {
                    b.guard("train_step_2layer_keep_attention", t, () -> b.trainStep(t, Optimizer.Placement.DEVICE, true));
                }
                if (want.test("train_step_2layer_offload")) {
                    b.guard("train_step_2layer_offload", t, () -> b.trainStep(t, Optimizer.Placement.HOST, false));
                }
            }
        }
    }

    /** Runs one case; a failure becomes a row with its error, and the next case goes on. */
    private void guard(String op, int tokens, Runnable r) {
        try {
            r.run();
        } catch (RuntimeException | Error e) {
            e.printStackTrace();
            Map<String, Object> row = row(op, tokens, null, null, null, null, "");
            row.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
            add(row);
            dev.allocator().releaseCached();
        }
    }

    private Map<String, Object> row(String op, int tokens, Double ms, Double tflops, Long peak, Double relErr, String note) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("impl", "longtune");
        r.put("op", op);
        r.put("tokens", tokens);
        r.put("dtype", "bf16");
        r.put("median_ms", ms);
        r.put("tflops", tflops);
        r.put("peak_bytes", peak);
        r.put("rel_err", relErr);
        r.put("note", note);
        return r;
    }

    private void add(Map<String, Object> row) {
        rows.add(row);
        System.out.println(row);
        try {
            JSON.writeValue(out, rows); // rewritten after every row: a cut-short run keeps what it finished
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private Tensor randn(String name, DType e, double scale, int... shape) {
        Tensor t = dev.allocate(name, e, MemoryCategory.ACTIVATIONS, shape);
        dev.write(t, noise((int) t.numel(), random.nextLong(), scale));
        return t;
    }

    /**
     * Seeded noise of unit variance times {@code scale}, never zero, filled in parallel (Random.nextGaussian is
     * too slow for the 470M-element SwiGLU inputs): a uniform on ±√3 from a 64-bit mix of (seed, index).
     */
    public static float[] noise(int n, long seed, double scale) {
        float[] x = new float[n];
        double half = Math.sqrt(3) * scale;
        IntStream.range(0, (n + 65535) / 65536).parallel().forEach(block -> {
            int to = Math.min(n, (block + 1) * 65536);
            for (int i = block * 65536; i < to; i++) {
                long z = seed + 0x9E3779B97F4A7C15L * (i + 1L);
                z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
                z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
                z ^= z >>> 31;
                double u = ((z >>> 11) + 0.5) / (1L << 53); // in (0, 1), never 0.5 exactly
                x[i] = (float) ((2 * u - 1) * half);
            }
        });
        return x;
    }

    /** Median milliseconds of {@code work} over repeats chosen to last about a second (3 to 50). */
    private double median(Runnable work) {
        work.run(); // warm-up (and kernel loading)
        dev.synchronize();
        float first = dev.time(work);
        int repeats = (int) Math.max(3, Math.min(50, 1000 / Math.max(first, 1e-3)));
        double[] ms = new double[repeats];
        for (int i = 0; i < repeats; i++) {
            ms[i] = dev.time(work);
        }
        Arrays.sort(ms);
        return ms[repeats / 2];
    }

    /** The op's own peak: the tracker's peak during one run above what was held before it. */
    private long peakAdded(Runnable work) {
        dev.synchronize();
        long before = dev.memory().currentTotal();
        dev.memory().resetPeaks();
        work.run();
        dev.synchronize();
        return dev.memory().peakTotal() - before;
    }

    static double relErr(double[] actual, double[] ref) {
        double err = 0, max = 1e-30;
        for (int i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(actual[i] - ref[i]));
            max = Math.max(max, Math.abs(ref[i]));
        }
        return err / max;
    }

    // ---- attention -----------------------------------------------------------------------------------------

    private void attention(int t) {
        int hq = 32, hkv = 8, d = 128;
        int[] cu = {0, t};
        try (Tensor q = randn("q", DType.BF16, 1, t, hq, d); Tensor k = randn("k", DType.BF16, 1, t, hkv, d);
             Tensor v = randn("v", DType.BF16, 1, t, hkv, d); Tensor dout = randn("dout", DType.BF16, 1, t, hq, d);
             Tensor o = dev.allocate("out", DType.BF16, MemoryCategory.ACTIVATIONS, t, hq, d);
             Tensor lse = dev.allocate("lse", DType.FP32, MemoryCategory.ACTIVATIONS, hq, t);
             Tensor dq = dev.allocate("dq", DType.BF16, MemoryCategory.ACTIVATIONS, t, hq, d);
             Tensor dk = dev.allocate("dk", DType.BF16, MemoryCategory.ACTIVATIONS, t, hkv, d);
             Tensor dv = dev.allocate("dv", DType.BF16, MemoryCategory.ACTIVATIONS, t, hkv, d)) {
            Runnable fwd = () -> dev.attentionForward(o, lse, q, k, v, cu, t, hq, hkv, d);
            fwd.run();
            double err = AttentionCheck.sampledForwardError(dev, o, q, k, v, t, hq, hkv, d, random);
            double flops = 2.0 * 2.0 * t * (double) t * hq * d / 2;
            double ms = median(fwd);
            add(row("attention_fwd", t, ms, flops / (ms * 1e9), peakAdded(fwd) + o.bytes() + lse.bytes(), err,
                    "FlashAttention-2 kernel (NVRTC), causal, 32/8 heads, d=128; rel_err on sampled rows vs fp64; "
                            + "peak = output + lse + workspace"));
            Runnable both = () -> {
                fwd.run();
                dev.attentionBackward(dq, dk, dv, dout, q, k, v, o, lse, cu, t, hq, hkv, d);
            };
            double msBoth = median(both);
            long outputs = o.bytes() + lse.bytes() + dq.bytes() + dk.bytes() + dv.bytes();
            add(row("attention_fwd_bwd", t, msBoth, 3.5 * flops / (msBoth * 1e9), peakAdded(both) + outputs, null,
                    "backward parity is tested on odd shapes by DeviceParityTest (and on the H200); "
                            + "peak = output + lse + grads + workspace"));
        }
    }

    // ---- fused linear cross-entropy ---------------------------------------------------------------------------

    private void linearCrossEntropy(int n) {
        int h = 4096, v = 128256;
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = random.nextInt(20) == 0 ? -100 : random.nextInt(v);
        }
        try (Tensor hidden = randn("hidden", DType.BF16, 1, n, h); Tensor w = randn("w", DType.BF16, 0.02, v, h);
             Tensor dh = dev.allocate("dh", DType.BF16, MemoryCategory.GRADS, n, h);
             Tensor dw = dev.allocate("dw", DType.BF16, MemoryCategory.GRADS, v, h)) {
            Runnable op = () -> dev.linearCrossEntropy(dh, dw, hidden, w, labels, n, h, v, 1f);
            double loss = dev.linearCrossEntropy(null, null, hidden, w, labels, n, h, v, 1f);
            double ref = CrossEntropyCheck.sampledLoss(dev, hidden, w, labels, h, v, 16);
            double err = Math.abs(CrossEntropyCheck.sampledOurs(dev, hidden, w, labels, h, v, 16) - ref) / Math.abs(ref);
            long peak = peakAdded(op);
            double ms = median(op);
            double flops = 3 * 2.0 * n * (double) h * v;
            // each pass alone over every chunk (the rest of the time: launches, allocation, the loss read-back); with
            // masked labels the logits pass includes the gather of the valid hidden rows, the dH pass its dhidden rows'
            // gather and scatter, and the passes without the logits one read stale gathered rows (only the time counts)
            Map<String, Object> stageMs = new java.util.LinkedHashMap<>();
            for (CudaDevice.LossStage stage : CudaDevice.LossStage.values()) {
                stageMs.put(stage.name().toLowerCase(java.util.Locale.ROOT), median(() ->
                        dev.linearCrossEntropy(dh, dw, hidden, w, labels, n, h, v, 1f, java.util.EnumSet.of(stage))));
            }
            stageMs.put("none", median(() -> dev.linearCrossEntropy(dh, dw, hidden, w, labels, n, h, v, 1f,
                    java.util.EnumSet.noneOf(CudaDevice.LossStage.class))));
            // the same with no token masked (every row through the three GEMMs; the row above skips the 5% masked)
            int[] allValid = labels.clone();
            for (int i = 0; i < n; i++) {
                if (allValid[i] == -100) {
                    allValid[i] = random.nextInt(v);
                }
            }
            double msAllValid = median(() -> dev.linearCrossEntropy(dh, dw, hidden, w, allValid, n, h, v, 1f));
            // long-context finetuning's shape: a prompt of 80% of the tokens masked, the answer trained
            int[] prompt = allValid.clone();
            java.util.Arrays.fill(prompt, 0, n * 4 / 5, -100);
            double msPrompt = median(() -> dev.linearCrossEntropy(dh, dw, hidden, w, prompt, n, h, v, 1f));
            System.out.println("linear_cross_entropy " + n + ": " + String.format(java.util.Locale.ROOT, "%.1f", ms)
                    + " ms (" + String.format(java.util.Locale.ROOT, "%.1f", msAllValid)
                    + " ms with no token masked, " + String.format(java.util.Locale.ROOT, "%.1f", msPrompt)
                    + " ms with the first 80% masked); each pass alone over all chunks (ms): " + stageMs);
            Map<String, Object> r = row("linear_cross_entropy", n, ms, flops / (ms * 1e9), peak, err,
                    "chunked FLCE (cuBLAS bf16 GEMMs, fp32 logits chunk ≤1 GiB, gradients in forward, the 5% masked tokens skipped); mean loss "
                            + String.format(java.util.Locale.ROOT, "%.4f", loss) + "; rel_err of the loss on 16 rows vs fp64");
            r.put("stage_ms", stageMs);
            r.put("all_tokens_valid_ms", msAllValid);
            r.put("prompt_80pct_masked_ms", msPrompt);
            add(r);
        }
    }

    // ---- small fused ops ---------------------------------------------------------------------------------------

    private void rmsNorm(int n) {
        int c = 4096;
        try (Tensor x = randn("x", DType.BF16, 1, n, c); Tensor w = randn("w", DType.BF16, 1, c);
             Tensor dout = randn("dout", DType.BF16, 1, n, c);
             Tensor o = dev.allocate("out", DType.BF16, MemoryCategory.ACTIVATIONS, n, c);
             Tensor rstd = dev.allocate("rstd", DType.FP32, MemoryCategory.ACTIVATIONS, n);
             Tensor dx = dev.allocate("dx", DType.BF16, MemoryCategory.ACTIVATIONS, n, c);
             Tensor dw = dev.allocate("dw", DType.BF16, MemoryCategory.GRADS, c)) {
            Runnable op = () -> {
                dev.rmsNormForward(o, rstd, x, w, n, c, 1e-5f);
                dev.rmsNormBackward(dx, dw, dout, x, w, rstd, n, c);
            };
            dev.rmsNormForward(o, rstd, x, w, n, c, 1e-5f);
            double err = SmallOpCheck.rmsNormRows(dev, o, x, w, c, 8);
            add(row("rms_norm_fwd_bwd", n, median(op), null, peakAdded(op), err, "rel_err of forward rows vs fp64"));
        }
    }

    private void swiglu(int n) {
        int f = 14336;
        try (Tensor g = randn("gate", DType.BF16, 1, n, f); Tensor u = randn("up", DType.BF16, 1, n, f);
             Tensor dout = randn("dout", DType.BF16, 1, n, f);
             Tensor o = dev.allocate("out", DType.BF16, MemoryCategory.ACTIVATIONS, n, f);
             Tensor dg = dev.allocate("dgate", DType.BF16, MemoryCategory.ACTIVATIONS, n, f);
             Tensor du = dev.allocate("dup", DType.BF16, MemoryCategory.ACTIVATIONS, n, f)) {
            Runnable op = () -> {
                dev.swigluForward(o, g, u, n, f);
                dev.swigluBackward(dg, du, dout, g, u, n, f, false);
            };
            dev.swigluForward(o, g, u, n, f);
            double err = SmallOpCheck.swigluPrefix(dev, o, g, u, 1 << 16);
            add(row("swiglu_fwd_bwd", n, median(op), null, peakAdded(op), err, "rel_err of forward (first 65,536) vs fp64"));
        }
    }

    private void rope(int t) {
        int hq = 32, hkv = 8, d = 128;
        ModelConfig.RopeScaling rs = ModelCatalog.get("llama-3.1-8b").ropeScaling();
        double[] inv = Rope.inverseFrequencies(d, 500000, new Rope.Llama3Scaling(rs.factor(), rs.lowFreqFactor(),
                rs.highFreqFactor(), rs.originalMaxPositions()));
        int[] pos = IntStream.range(0, t).toArray();
        try (Tensor q = randn("q", DType.BF16, 1, t, hq, d); Tensor k = randn("k", DType.BF16, 1, t, hkv, d)) {
            float[] before = dev.read(q);
            dev.ropeForward(q, k, pos, inv, t, hq, hkv, d);
            double err = SmallOpCheck.ropeRows(before, dev.read(q), pos, inv, hq, d, t - 4, t);
            Runnable op = () -> {
                dev.ropeForward(q, k, pos, inv, t, hq, hkv, d);
                dev.ropeBackward(q, k, pos, inv, t, hq, hkv, d);
            };
            add(row("rope_fwd_bwd", t, median(op), null, peakAdded(op), err,
                    "Llama 3.1 scaled frequencies, angles in double; rel_err of the last rows (positions near " + t + ") vs fp64"));
        }
    }

    private void gemm() {
        int m = 8192, n = 14336, k = 4096;
        try (Tensor a = randn("a", DType.BF16, 1, m, k); Tensor b = randn("b", DType.BF16, 1, n, k);
             Tensor c = dev.allocate("c", DType.BF16, MemoryCategory.ACTIVATIONS, m, n)) {
            Runnable op = () -> dev.matmul(c, a, b, m, n, k, false, true, 0f);
            op.run();
            double err = SmallOpCheck.gemmSamples(dev, c, a, b, m, n, k, random);
            double ms = median(op);
            add(row("gemm", m, ms, 2.0 * m * n * (double) k / (ms * 1e9), peakAdded(op), err,
                    "cuBLAS bf16 (8192×4096)·(14336×4096)ᵀ, fp32 accumulation; rel_err on 64 sampled entries vs fp64"));
        }
    }

    static float[] ones(int n) {
        float[] x = new float[n];
        Arrays.fill(x, 1f);
        return x;
    }

    // ---- a training step ---------------------------------------------------------------------------------------

    /**
     * A training step of the 8B's first two layers (with embedding and head) beside Hugging Face's; keepAttention:
     * each layer's attention output and lse go to the host with its checkpoint, so backward does not run the
     * attention forward again (`--keep-attention`).
     */
    private void trainStep(int t, Optimizer.Placement placement, boolean keepAttention) {
        ModelConfig two = ModelCatalog.get("llama-3.1-8b").withLayers(2);
        Supplier<Batch> batch = () -> {
            int[] ids = new int[t];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = random.nextInt(two.vocabSize());
            }
            return Batch.ofDocument(ids);
        };
        dev.memory().resetPeaks();
        long before = dev.memory().currentTotal();
        try (LlamaModel model = new LlamaModel(two, dev, Precision.BF16, Checkpointing.OFFLOAD)) {
            model.setKeptAttentionLayers(keepAttention ? two.numLayers() : 0);
            // what `train` turns on where the planner finds the GPU's room (it does here: under 30 of the H200's 131
            // GiB at 32K): checkpoints brought back a layer ahead, and the last layer's saved tensors kept for its
            // backward; --recompute-every-layer measures the step without them
            model.setPrefetchCheckpoints(trainChoices);
            model.setKeepLastLayer(trainChoices);
            long seed = 1;
            for (var w : model.weights().byName().entrySet()) { // initialize()'s sequential Random takes ~1 min here
                float[] values = w.getKey().endsWith("norm.weight") ? ones((int) w.getValue().numel())
                        : noise((int) w.getValue().numel(), seed++, 0.02);
                dev.write(w.getValue(), values);
            }
            try (Trainer trainer = new Trainer(model, TrainingConfig.defaults(100), Precision.BF16, placement)) {
                Batch b = batch.get();
                dev.setOutOfMemoryAdvice(() -> "");
                trainer.step(List.of(b)); // warm-up
                double[] fb = new double[2];
                double[] step = new double[2];
                double busy = 0;
                Map<String, Double> idle = Map.of();
                for (int i = 0; i < 2; i++) {
                    long s = System.nanoTime();
                    model.grads().zero();
                    model.takeBusySeconds(); // what the warm-up's or the last step's pass left
                    model.takeIdleSeconds();
                    fb[i] = dev.time(() -> model.forwardBackward(b, 1f));
                    busy = model.takeBusySeconds() * 1e3; // the units' brackets (embedding, layers, head) of this pass
                    idle = model.takeIdleSeconds();
                    trainer.step(List.of(b));
                    step[i] = (System.nanoTime() - s) / 1e6 - fb[i];
                }
                Arrays.sort(fb);
                Arrays.sort(step); // two timed steps after a warm-up: [0] is the faster
                long peak = dev.memory().peakTotal() - before;
                boolean host = placement == Optimizer.Placement.HOST;
                String op = host ? "train_step_2layer_offload" : keepAttention ? "train_step_2layer_keep_attention" : "train_step_2layer";
                Map<String, Object> r = row(op, t, step[0], null, peak, null,
                        "2 Llama-3.1-8B layers, bf16, offloaded checkpoints" + (keepAttention ? " and attention outputs" : "")
                                + (trainChoices ? " (brought back a layer ahead; the last layer kept, not recomputed)"
                                        : " (every layer recomputed, its checkpoint brought back as it starts)")
                                + ", FP32 master + AdamW "
                                + (host ? "on the CPU (ZeRO-offload); " : "on the GPU; ")
                                + String.format(java.util.Locale.ROOT, "forward+backward %.1f ms on the GPU", fb[0]));
                r.put("tokens_per_s", t / (step[0] / 1000.0));
                r.put("peer_op", "train_step_2layer");
                r.put("gpu_fwd_bwd_ms", fb[0]);
                r.put("gpu_tokens_per_s", t / (fb[0] / 1000.0));
                r.put("keep_last_layer", trainChoices);
                // where the pass's time went besides the kernels: the device idle before each kind of unit (the host
                // or a copy late), in ms, of the last timed pass
                r.put("busy_ms_last_pass", busy);
                Map<String, Double> idleMs = new java.util.TreeMap<>();
                idle.forEach((k, v) -> idleMs.put(k, v * 1e3));
                r.put("idle_ms_last_pass", idleMs);
                add(r);
            }
        }
    }
}
