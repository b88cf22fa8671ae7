package dev.longtune.bench;

import dev.longtune.cuda.CudaDevice;
import dev.longtune.tensor.Tensor;

import java.util.Random;
import java.util.stream.IntStream;

/** Attention output on a few sampled (row, head) pairs against fp64, for one causal document. */
final class AttentionCheck {
    private AttentionCheck() {}

    static double sampledForwardError(CudaDevice dev, Tensor out, Tensor q, Tensor k, Tensor v, int t, int hq, int hkv,
                                      int d, Random random) {
        float[] qs = dev.read(q), ks = dev.read(k), vs = dev.read(v), os = dev.read(out);
        int group = hq / hkv;
        int[][] samples = new int[8][];
        for (int i = 0; i < samples.length; i++) {
            int row = i < 2 ? t - 1 - i : random.nextInt(t);
            samples[i] = new int[] {row, random.nextInt(hq)};
        }
        double[] errs = IntStream.range(0, samples.length).parallel().mapToDouble(s -> {
            int row = samples[s][0], h = samples[s][1], g = h / group;
            double scale = 1.0 / Math.sqrt(d);
            double[] score = new double[row + 1];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j <= row; j++) {
                double dot = 0;
                for (int x = 0; x < d; x++) {
                    dot += (double) qs[(row * hq + h) * d + x] * ks[(j * hkv + g) * d + x];
                }
                score[j] = dot * scale;
                max = Math.max(max, score[j]);
            }
            double sum = 0;
            for (int j = 0; j <= row; j++) {
                score[j] = Math.exp(score[j] - max);
                sum += score[j];
            }
            double err = 0, ref = 0;
            for (int x = 0; x < d; x++) {
                double o = 0;
                for (int j = 0; j <= row; j++) {
                    o += score[j] * vs[(j * hkv + g) * d + x];
                }
                o /= sum;
                err = Math.max(err, Math.abs(os[(row * hq + h) * d + x] - o));
                ref = Math.max(ref, Math.abs(o));
            }
            return err / ref;
        }).toArray();
        double worst = 0;
        for (double e : errs) {
            worst = Math.max(worst, e);
        }
        return worst;
    }
}
