// The row-wise part of fused linear cross-entropy for the CPU device (longtune), compiled into the toolkit jar
// through JavaCPP. The GEMMs around it (logits = H·Wᵀ, dH = dZ·W, dW += dZᵀ·H) stay in ND4J; this is what
// dev.longtune.ops.FusedLinearCrossEntropy does between them, for one chunk (fp32, row-major):
//   logits (rows, V), labels (rows) in [0, V) (the caller leaves ignored tokens out of the chunk), loss (rows)
//   loss[r]   = logsumexp(z_r) - z_r[label_r]                         (double)
//   logits[r] = (softmax(z_r) - onehot(label_r)) * scale               (overwritten in place: the logit gradient)
// One exponential per logit: e = exp(z - max) is summed in double and kept as a float to be normalised. Rows
// run in parallel; each row is summed serially in index order, so the result does not depend on the threads.
#ifndef LONGTUNE_CROSS_ENTROPY_H
#define LONGTUNE_CROSS_ENTROPY_H

#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LONGTUNE_CE_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define LONGTUNE_CE_CLONES
#endif

namespace longtune_cpu {

LONGTUNE_CE_CLONES
static double cross_entropy_row(float* z, int label, int V, float scale) {
    float max = -INFINITY;
    for (int v = 0; v < V; v++) max = z[v] > max ? z[v] : max;
    const float target = z[label];
    double sumExp = 0.0;
    for (int v = 0; v < V; v++) {
        const float e = std::exp(z[v] - max);
        sumExp += e;
        z[v] = e;
    }
    const float norm = (float) (scale / sumExp);
    for (int v = 0; v < V; v++) z[v] *= norm;
    z[label] -= scale;
    return (double) max + std::log(sumExp) - (double) target;
}

} // namespace longtune_cpu

inline void longtune_cross_entropy_rows(float* logits, double* loss, const int* labels, int rows, int V, float scale) {
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        loss[r] = longtune_cpu::cross_entropy_row(logits + (int64_t) r * V, labels[r], V, scale);
    }
}

#endif
