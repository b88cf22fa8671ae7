package dev.longtune.ops.reference;

/**
 * RMSNorm in double, written from the formulas without reuse or fusion, to check {@code ops.RmsNorm}.
 * {@code y_j = x_j · r · w_j} with {@code r = (Σ_k x_k² / C + eps)^(−1/2)}; since
 * {@code ∂r/∂x_k = −r³ x_k / C}:
 * {@code dx_k = r w_k dy_k − (r³ x_k / C) Σ_j dy_j w_j x_j}, {@code dw_j = Σ_rows dy_j x_j r}.
 */
public final class RmsNormReference {
    private RmsNormReference() {}

    // inp is (N, C), weight (C), out (N, C)
    public static void forward(double[] out, double[] inp, double[] weight, int N, int C, double eps) {
        for (int n = 0; n < N; n++) {
            double r = rstd(inp, n, C, eps);
            for (int c = 0; c < C; c++) {
                out[n * C + c] = inp[n * C + c] * r * weight[c];
            }
        }
    }

    // dout is (N, C), inp (N, C), weight (C); dinp (N, C) +=, dweight (C) +=
    public static void backward(double[] dinp, double[] dweight, double[] dout, double[] inp, double[] weight,
                                int N, int C, double eps) {
        for (int n = 0; n < N; n++) {
            double r = rstd(inp, n, C, eps);
            double s = 0;
            for (int j = 0; j < C; j++) {
                s += dout[n * C + j] * weight[j] * inp[n * C + j];
            }
            for (int k = 0; k < C; k++) {
                double x = inp[n * C + k];
                dinp[n * C + k] += r * weight[k] * dout[n * C + k] - r * r * r * x / C * s;
                dweight[k] += dout[n * C + k] * x * r;
            }
        }
    }

    private static double rstd(double[] inp, int n, int C, double eps) {
        double sumSquares = 0;
        for (int c = 0; c < C; c++) {
            sumSquares += inp[n * C + c] * inp[n * C + c];
        }
        return 1 / Math.sqrt(sumSquares / C + eps);
    }
}
