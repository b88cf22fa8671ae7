package dev.longtune.dist;

import org.junit.jupiter.api.Test;

import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

/** Nodes meeting over TCP on localhost (threads standing in for processes on several machines). */
class RendezvousTest {
    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Each node's secret, or what it threw. */
    static List<Object> meet(int nodes, List<Integer> started, Map<Integer, String> digests, Duration timeout) throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newCachedThreadPool();
        try {
            List<Future<Object>> fs = new ArrayList<>();
            for (int r : started) {
                Rendezvous.Node node = new Rendezvous.Node("127.0.0.1", port, nodes, r, 2);
                fs.add(pool.submit(() -> {
                    try {
                        return Rendezvous.meet(node, digests.getOrDefault(r, "abc"), new byte[] {7, 1, 2, (byte) r}, timeout);
                    } catch (RuntimeException e) {
                        return e;
                    }
                }));
            }
            List<Object> out = new ArrayList<>();
            for (Future<Object> f : fs) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void everyNodeGetsNodeZerosSecret() throws Exception {
        List<Object> got = meet(3, List.of(2, 0, 1), Map.of(), Duration.ofSeconds(20));
        assertThat(got).allSatisfy(g -> assertThat(g).isEqualTo(new byte[] {7, 1, 2, 0}));
    }

    @Test
    void aNodeWithAnotherConfigurationStopsEveryNodeWithTheReason() throws Exception {
        List<Object> got = meet(3, List.of(0, 1, 2), Map.of(1, "different"), Duration.ofSeconds(20));
        for (Object g : got) {
            assertThat(g).isInstanceOf(IllegalStateException.class);
            assertThat(((Throwable) g).getMessage()).contains("node 1 runs another configuration");
        }
    }

    @Test
    void aMissingNodeIsNamedAfterTheTimeout() throws Exception {
        List<Object> got = meet(3, List.of(0, 1), Map.of(), Duration.ofSeconds(2));
        assertThat(((Throwable) got.get(0)).getMessage()).contains("nodes 2 did not join within 2 s");
        assertThat(((Throwable) got.get(1)).getMessage()).contains("nodes 2 did not join");
    }

    @Test
    void theEnvironmentOfPyTorchsLauncherIsRead() {
        assertThat(Rendezvous.Node.fromEnvironment(Map.of(), 4)).isNull();
        Rendezvous.Node n = Rendezvous.Node.fromEnvironment(Map.of("NNODES", "2", "NODE_RANK", "1", "MASTER_ADDR",
                "10.0.0.1", "MASTER_PORT", "29500"), 4);
        assertThat(n.worldSize()).isEqualTo(8);
        assertThat(n.rank(3)).isEqualTo(7);
        assertThatThrownBy(() -> Rendezvous.Node.fromEnvironment(Map.of("NNODES", "2", "NODE_RANK", "1"), 4))
                .hasMessageContaining("MASTER_ADDR is not set");
        assertThatThrownBy(() -> Rendezvous.Node.fromEnvironment(Map.of("NNODES", "2", "NODE_RANK", "2", "MASTER_ADDR",
                "h", "MASTER_PORT", "1"), 4)).hasMessageContaining("NODE_RANK (2) < NNODES (2)");
        assertThat(Rendezvous.digest("a")).hasSize(16).isNotEqualTo(Rendezvous.digest("b"));
    }

    @Test
    void aNodeWhoseMasterNeverListensIsTold() throws Exception {
        Rendezvous.Node node = new Rendezvous.Node("127.0.0.1", freePort(), 2, 1, 1);
        assertThatThrownBy(() -> Rendezvous.meet(node, "abc", null, Duration.ofSeconds(1)))
                .hasMessageContaining("did not answer within 1 s").hasMessageContaining("MASTER_ADDR/MASTER_PORT");
    }
}
