package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.config.TechniqueSet;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** train --resident-layers: a number or auto, the most layers whose planned GPU peak (and the allocator's share) fits. */
class ResidentLayersTest {
    static final long GIB = 1L << 30;
    final ModelConfig llama = ModelCatalog.get("llama-3.1-8b");

    /** The number-or-auto parsing is KeptAttention's (tested there); what differs: no "all", and its own option named. */
    @Test
    void parsesANumberOrAutoAndNamesItsOption() {
        assertThat(ResidentLayers.parse(null, 32)).isZero();
        assertThatThrownBy(() -> ResidentLayers.parse("all", 32)).hasMessageContaining("--resident-layers all: use auto or a number");
    }

    /**
     * At 32K with kept attention under a 48 GiB cap: 7 layers beside the resident embedding and 9 without, the
     * counts measured to fit on an H200 (7 + embedding: 46.3 GiB reserved; 10 alone: 46.3 GiB, one more than auto
     * allows); under 16 GiB at most one (the V100's cap: the activations take most of it); with the whole GPU, every layer.
     */
    @Test
    void autoKeepsWhatTheCappedGpuHolds() {
        long host = 256 * GIB;
        int all = TechniqueSet.ALL_LAYERS;
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, true, 32_768, 48 * GIB, host)).isEqualTo(7);
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 32_768, 48 * GIB, host)).isEqualTo(9);
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 32_768, 16 * GIB, host)).isLessThanOrEqualTo(1);
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 32_768, Long.MAX_VALUE, host))
                .isEqualTo(32);
        // longer context, bigger activations: fewer layers fit under the same cap
        assertThat(ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, all, false, 131_072, 48 * GIB, host))
                .isLessThan(9);
    }

    /**
     * With ZeRO-3 over 2 GPUs each GPU keeps its half of the resident layers and embedding: per GPU the optimizer
     * state is 12 bytes per parameter of K·⌈Lp/2⌉ + ⌈V·h/2⌉, the host's pinned shards and AdamW state lose those
     * elements on each GPU's behalf, the host AdamW (and the throughput model's optimizer time) shrinks, and auto
     * keeps more layers per GPU than one GPU does under the same cap.
     */
    @Test
    void shardsOfResidentLayersSplitOverTheGpus() {
        long host = 256 * GIB;
        var node = PlannerAdvice.cappedNode(48 * GIB, host, 2);
        var base = dev.longtune.config.Stacks.engineRun(node, Precision.BF16, true, true, Checkpointing.OFFLOAD).withGpus(2)
                .withKeptAttentionLayers(TechniqueSet.ALL_LAYERS);
        var planner = new dev.longtune.plan.MemoryPlanner(dev.longtune.config.EngineProfile.LONGTUNE);
        var offloaded = planner.plan(llama, node, base, 32_768);
        var resident = planner.plan(llama, node, base.withResidentLayers(5).withResidentEmbedding(true), 32_768);
        long shard = 5 * ((llama.layerParameters() + 1) / 2) + (llama.vocabSize() * (long) llama.hiddenSize() + 1) / 2;
        var opt = dev.longtune.tensor.MemoryCategory.OPTIMIZER;
        assertThat(resident.gpuAtPeak().bytes(opt) - offloaded.gpuAtPeak().bytes(opt)).isEqualTo(12 * shard);
        assertThat(offloaded.hostAtPeak().bytes(opt) - resident.hostAtPeak().bytes(opt)).isEqualTo(2 * 12 * shard);
        for (var c : new dev.longtune.tensor.MemoryCategory[] {dev.longtune.tensor.MemoryCategory.WEIGHTS,
                dev.longtune.tensor.MemoryCategory.GRADS}) {
            assertThat(offloaded.hostAtPeak().bytes(c) - resident.hostAtPeak().bytes(c)).as(c.toString()).isEqualTo(2 * 2 * shard);
        }
        var throughput = new dev.longtune.plan.ThroughputModel(dev.longtune.config.EngineProfile.LONGTUNE);
        assertThat(throughput.estimate(llama, node, base.withResidentLayers(5).withResidentEmbedding(true), 32_768).optimizerSeconds())
                .isLessThan(throughput.estimate(llama, node, base, 32_768).optimizerSeconds());
        int one = ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, TechniqueSet.ALL_LAYERS, true, 32_768, 48 * GIB, host);
        int two = ResidentLayers.auto(llama, Precision.BF16, Checkpointing.OFFLOAD, TechniqueSet.ALL_LAYERS, true, 32_768, 48 * GIB, host, 2);
        assertThat(two).isGreaterThan(one);
        var atTwo = planner.plan(llama, node, base.withResidentLayers(two).withResidentEmbedding(true), 32_768);
        assertThat(atTwo.gpuPeakBytes() * ResidentLayers.RESERVED_OVER_ALLOCATED).isLessThanOrEqualTo(PlannerAdvice.allocatorBytes(node));
    }
}
