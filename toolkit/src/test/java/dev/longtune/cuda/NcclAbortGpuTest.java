package dev.longtune.cuda;

import dev.longtune.device.Device;
import dev.longtune.dist.PeerFailedException;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * What a GPU rank does when another rank of its process fails: {@code DataParallel} aborts every local communicator
 * from the failing rank's thread (ncclCommAbort), so collectives in flight end and later ones throw instead of
 * waiting forever. One GPU holds one rank of a group of one (NCCL refuses two ranks on one GPU), so this checks the
 * mechanics: collectives before, the abort from another thread, the refusals after, and a close that does not
 * destroy the aborted communicator again. The 2-GPU case (a peer blocked in a collective) needs the 2-GPU machine.
 */
class NcclAbortGpuTest {
    @BeforeEach
    void needsAGpu() { GpuTests.assumeGpu(); }

    @Test
    void anAbortedRankRefusesItsCollectivesAndClosesOnce() throws Exception {
        try (CudaDevice d = new CudaDevice()) {
            NcclCommunicator c = NcclCommunicator.join(d, NcclCommunicator.newId(), 1, 0);
            try (Tensor send = d.allocate("send", DType.FP32, MemoryCategory.COMM, 37);
                 Tensor recv = d.allocate("recv", DType.FP32, MemoryCategory.COMM, 37)) {
                float[] values = new float[37];
                for (int i = 0; i < values.length; i++) {
                    values[i] = 0.25f * i - 3.5f;
                }
                d.write(send, values);
                // a group of one: the gather is a copy, the sum the values themselves
                d.waitFor(Device.Stream.COMMUNICATION, d.record(Device.Stream.COMPUTE));
                c.allGather(send, recv);
                d.waitFor(Device.Stream.COMPUTE, d.record(Device.Stream.COMMUNICATION));
                assertThat(d.read(recv)).containsExactly(values);
                assertThat(c.allReduceSum(1.5, -2.25)).containsExactly(1.5, -2.25);

                Thread failing = new Thread(() -> c.abort(3, new IllegalStateException("rank 3 ran out of memory")));
                failing.start();
                failing.join();
                assertThatThrownBy(() -> c.allReduceSum(1.0)).isInstanceOf(PeerFailedException.class)
                        .hasMessageContaining("rank 3 failed").hasMessageContaining("ran out of memory");
                assertThatThrownBy(() -> c.allGather(send, recv)).isInstanceOf(PeerFailedException.class)
                        .satisfies(e -> assertThat(((PeerFailedException) e).failedRank()).isEqualTo(3));
                assertThatThrownBy(() -> c.reduceScatter(send, recv)).isInstanceOf(PeerFailedException.class);
                c.abort(1, new IllegalStateException("a second failure")); // the first one stays the reason
                assertThatThrownBy(() -> c.allReduceSum(1.0)).hasMessageContaining("rank 3 failed");
            } finally {
                c.close();
                c.close(); // the aborted communicator is not destroyed (again): no crash, no error
            }
            // the device goes on working after its communicator was aborted
            try (Tensor t = d.allocate("after", DType.FP32, MemoryCategory.WORKSPACE, 5)) {
                d.write(t, new float[] {1, 2, 3, 4, 5});
                assertThat(d.read(t)).containsExactly(1, 2, 3, 4, 5);
            }
        }
    }
}
