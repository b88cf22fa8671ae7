package dev.longtune.dist;

import dev.longtune.device.CpuDevice;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BiFunction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

class LocalCommunicatorTest {
    /** Runs {@code work} on every rank of a new group at once; results in rank order. */
    static <T> List<T> onRanks(int n, Duration timeout, BiFunction<Communicator, CpuDevice, T> work) throws Exception {
        List<Communicator> group = LocalCommunicator.group(n, timeout);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (Communicator c : group) {
                fs.add(pool.submit(() -> {
                    try (CpuDevice d = new CpuDevice()) {
                        return work.apply(c, d);
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : fs) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void allGatherPutsEveryRanksBlockInRankOrder() throws Exception {
        List<float[]> got = onRanks(3, Duration.ofSeconds(30), (c, d) -> {
            Tensor send = d.allocate("send", DType.FP32, MemoryCategory.COMM, 2), recv = d.allocate("recv", DType.FP32, MemoryCategory.COMM, 6);
            d.write(send, new float[] {c.rank() + 0.5f, -c.rank()});
            c.allGather(send, recv);
            return d.read(recv);
        });
        for (float[] g : got) {
            assertThat(g).containsExactly(0.5f, 0f, 1.5f, -1f, 2.5f, -2f);
        }
    }

    @Test
    void reduceScatterSumsInRankOrderRoundingToTheDtypeAfterEachAddition() throws Exception {
        // in bf16, 256 + 1 rounds back to 256 and 256 + 1 + 1 stays 256 step by step; (1 + 1) + 256 would give 258
        float[][] inputs = {{256f, 3f}, {1f, 5f}, {1f, 7f}};
        List<float[]> got = onRanks(3, Duration.ofSeconds(30), (c, d) -> {
            Tensor send = d.allocate("send", DType.BF16, MemoryCategory.COMM, 3), recv = d.allocate("recv", DType.BF16, MemoryCategory.COMM, 1);
            float[] mine = inputs[c.rank()];
            d.write(send, new float[] {mine[0], mine[1], mine[0] * mine[1]});
            c.reduceScatter(send, recv);
            return d.read(recv);
        });
        assertThat(got.get(0)).containsExactly(256f);
        assertThat(got.get(1)).containsExactly(15f);
        assertThat(got.get(2)).containsExactly(768f + 5f + 7f); // 780 is a bf16 number
        List<double[]> sums = onRanks(2, Duration.ofSeconds(30), (c, d) -> c.allReduceSum(c.rank() + 1, 10));
        assertThat(sums).allSatisfy(s -> assertThat(s).containsExactly(3, 20));
    }

    @Test
    void aRankThatNeverArrivesFailsTheOthersNamingTheCollective() throws Exception {
        List<Throwable> got = onRanks(2, Duration.ofMillis(300), (c, d) -> {
            if (c.rank() == 1) {
                return null; // never calls
            }
            return catchThrowable(() -> c.allReduceSum(1.0));
        });
        assertThat(got.get(0)).isInstanceOf(IllegalStateException.class).hasMessageContaining("allReduceSum")
                .hasMessageContaining("other ranks of 2");
    }

    @Test
    void ranksThatDisagreeOnSizesAreTold() throws Exception {
        List<Throwable> got = onRanks(2, Duration.ofSeconds(30), (c, d) -> catchThrowable(() ->
                c.allReduceSum(new double[c.rank() + 1])));
        assertThat(got).allSatisfy(t -> assertThat(t).hasMessageContaining("the ranks disagree"));
    }
}
