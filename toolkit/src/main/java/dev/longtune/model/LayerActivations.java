package dev.longtune.model;

import dev.longtune.device.Device;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import static dev.longtune.tensor.MemoryCategory.ACTIVATIONS;

/**
 * What one decoder layer saves in forward for its backward (the layer input is kept apart, as the
 * checkpoint): the tensors docs/memory-model.md counts for the longtune profile.
 */
final class LayerActivations implements AutoCloseable {
    // n1, n2 (T, h); q and att (T, q); k, v (T, kv); h1 (T, h); gate, up, act (M, f) with M = T, or the tile's
    // tokens when the MLP runs in sequence tiles; rstd (T); lse (Hq, T)
    final Tensor n1, rstd1, q, k, v, att, lse, h1, n2, rstd2, gate, up, act;

    // allocated for overwrite (not zeroed): the forward's ops write each whole (the MLP's wide tensors one tile's
    // rows at a time) before anything reads it
    LayerActivations(Device d, DType e, int t, int mlpRows, int h, int q, int kv, int f, int heads) {
        // a failure part-way (out of memory) gives back what was allocated before it
        java.util.List<Tensor> made = new java.util.ArrayList<>();
        try {
            n1 = add(made, d.allocateForOverwrite("n1", e, ACTIVATIONS, t, h));
            rstd1 = add(made, d.allocateForOverwrite("rstd1", DType.FP32, ACTIVATIONS, t));
            this.q = add(made, d.allocateForOverwrite("q", e, ACTIVATIONS, t, q));
            k = add(made, d.allocateForOverwrite("k", e, ACTIVATIONS, t, kv));
            v = add(made, d.allocateForOverwrite("v", e, ACTIVATIONS, t, kv));
            att = add(made, d.allocateForOverwrite("att", e, ACTIVATIONS, t, q));
            lse = add(made, d.allocateForOverwrite("lse", DType.FP32, ACTIVATIONS, heads, t));
            h1 = add(made, d.allocateForOverwrite("h1", e, ACTIVATIONS, t, h));
            n2 = add(made, d.allocateForOverwrite("n2", e, ACTIVATIONS, t, h));
            rstd2 = add(made, d.allocateForOverwrite("rstd2", DType.FP32, ACTIVATIONS, t));
            gate = add(made, d.allocateForOverwrite("gate", e, ACTIVATIONS, mlpRows, f));
            up = add(made, d.allocateForOverwrite("up", e, ACTIVATIONS, mlpRows, f));
            act = add(made, d.allocateForOverwrite("act", e, ACTIVATIONS, mlpRows, f));
        } catch (RuntimeException | Error failure) {
            made.forEach(Tensor::close);
            throw failure;
        }
    }

    private static Tensor add(java.util.List<Tensor> made, Tensor t) {
        made.add(t);
        return t;
    }

    @Override
    public void close() { closeExcept(); }

    /** Closes every tensor but {@code keep} (which the caller closes later: a copy still reads them). */
    void closeExcept(Tensor... keep) {
        for (Tensor x : new Tensor[] {n1, rstd1, q, k, v, att, lse, h1, n2, rstd2, gate, up, act}) {
            if (!java.util.Arrays.asList(keep).contains(x)) {
                x.close();
            }
        }
    }
}
