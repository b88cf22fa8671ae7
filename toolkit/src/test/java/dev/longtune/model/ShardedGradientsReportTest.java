package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.dist.Communicator;
import dev.longtune.dist.LocalCommunicator;
import dev.longtune.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * ZeRO-3 with the shards on the host reports each group's gradient shard to the gradients listener once its
 * reduce-scatter has added the micro-batch (so the optimizer's host sums of squares run while backward goes on): every
 * host shard exactly once, holding its final values, and no resident (device) shard.
 */
class ShardedGradientsReportTest {
    @ParameterizedTest(name = "tied={0}")
    @ValueSource(booleans = {false, true})
    void everyHostShardIsReportedOnceWithItsFinalGradient(boolean tied) throws Exception {
        ModelConfig config = TinyLlama.config(32, 56, 3, 4, 2, 37, tied);
        List<Communicator> group = LocalCommunicator.group(2);
        ExecutorService threads = Executors.newFixedThreadPool(2);
        try {
            List<Future<Void>> ranks = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                ranks.add(threads.submit(() -> {
                    try (LlamaModel m = new LlamaModel(config, new CpuDevice(), Precision.BF16, Checkpointing.DEVICE,
                            ParameterPlacement.HOST, group.get(rank), 1, true)) {
                        m.initialize(4);
                        List<String> reported = new ArrayList<>();
                        Map<String, float[]> values = new java.util.HashMap<>();
                        m.setGradientsListener((grads, copied) -> grads.forEach((name, g) -> {
                            copied.synchronize();
                            reported.add(name);
                            values.put(name, m.device().read(g));
                        }));
                        m.forwardBackward(Batch.ofDocument(new Random(7 + rank).ints(29, 0, 37).toArray()), 1f);
                        Map<String, Tensor> shard = m.grads().byName();
                        List<String> host = shard.keySet().stream().filter(n -> !m.isResident(n)).toList();
                        assertThat(host).isNotEmpty();
                        assertThat(reported).as("rank %d", rank).containsExactlyInAnyOrderElementsOf(host);
                        // what was reported is what the optimizer then reads: the sum over both ranks' micro-batches
                        for (String name : host) {
                            assertThat(values.get(name)).as(name).containsExactly(m.device().read(shard.get(name)));
                        }
                    }
                    return null;
                }));
            }
            for (Future<Void> f : ranks) {
                f.get();
            }
        } finally {
            threads.shutdownNow();
        }
    }
}
