package dev.longtune.bench;

import dev.longtune.cuda.CudaDevice;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;

import java.util.stream.IntStream;

/** The mean cross-entropy of the first valid rows: in fp64 on the host, and through the device's FLCE. */
final class CrossEntropyCheck {
    private CrossEntropyCheck() {}

    private static int[] firstValid(int[] labels, int rows) {
        return IntStream.range(0, labels.length).filter(i -> labels[i] != -100).limit(rows).toArray();
    }

    static double sampledLoss(CudaDevice dev, Tensor hidden, Tensor w, int[] labels, int h, int v, int rows) {
        int[] idx = firstValid(labels, rows);
        float[] hs = dev.read(hidden), ws = dev.read(w);
        double total = 0;
        for (int i : idx) {
            double[] z = IntStream.range(0, v).parallel().mapToDouble(c -> {
                double s = 0;
                for (int x = 0; x < h; x++) {
                    s += (double) hs[i * h + x] * ws[c * h + x];
                }
                return s;
            }).toArray();
            double max = Double.NEGATIVE_INFINITY;
            for (double x : z) {
                max = Math.max(max, x);
            }
            double sum = 0;
            for (double x : z) {
                sum += Math.exp(x - max);
            }
            total += max + Math.log(sum) - z[labels[i]];
        }
        return total / idx.length;
    }

    /** The device's FLCE loss on the same rows (copied into a small hidden tensor). */
    static double sampledOurs(CudaDevice dev, Tensor hidden, Tensor w, int[] labels, int h, int v, int rows) {
        int[] idx = firstValid(labels, rows);
        float[] hs = dev.read(hidden);
        float[] sub = new float[idx.length * h];
        int[] subLabels = new int[idx.length];
        for (int r = 0; r < idx.length; r++) {
            System.arraycopy(hs, idx[r] * h, sub, r * h, h);
            subLabels[r] = labels[idx[r]];
        }
        try (Tensor small = dev.allocate("sampled hidden", DType.BF16, MemoryCategory.ACTIVATIONS, idx.length, h)) {
            dev.write(small, sub);
            return dev.linearCrossEntropy(null, null, small, w, subLabels, idx.length, h, v, 1f);
        }
    }
}
