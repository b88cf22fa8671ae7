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

    /** What each of {@code nodes} returned or threw, started {@code gapMillis} apart in the order given. */
    static List<Object> run(long gapMillis, List<java.util.concurrent.Callable<Object>> nodes) throws Exception {
        ExecutorService pool = Executors.newCachedThreadPool();
        try {
            List<Future<Object>> fs = new ArrayList<>();
            for (var node : nodes) {
                fs.add(pool.submit(() -> {
                    try {
                        return node.call();
                    } catch (RuntimeException e) {
                        return e;
                    }
                }));
                Thread.sleep(gapMillis);
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

    /** Each node's secret, or what it threw: nodes of one run started at once, each with its digest. */
    static List<Object> meet(int nodes, List<Integer> started, Map<Integer, String> digests, Duration timeout) throws Exception {
        int port = freePort();
        List<java.util.concurrent.Callable<Object>> all = new ArrayList<>();
        for (int r : started) {
            Rendezvous.Node node = new Rendezvous.Node("127.0.0.1", port, nodes, r, 2);
            all.add(() -> Rendezvous.meet(node, digests.getOrDefault(r, "abc"), new byte[] {7, 1, 2, (byte) r}, timeout));
        }
        return run(0, all);
    }

    /**
     * Each node's secret or what it threw, for nodes each with its own view of the run (NNODES, GPUS_PER_NODE), started
     * in the order given (node 0 first), after node 0 anything {@code beforeNodes} does.
     */
    static List<Object> meetAs(List<java.util.function.IntFunction<Rendezvous.Node>> nodes, Duration timeout,
                               Runnable beforeNodes, int port) throws Exception {
        List<java.util.concurrent.Callable<Object>> all = new ArrayList<>();
        all.add(() -> Rendezvous.meet(nodes.get(0).apply(port), "abc", new byte[] {9, 9}, timeout));
        all.add(() -> {
            beforeNodes.run();
            return null;
        });
        for (var n : nodes.subList(1, nodes.size())) {
            all.add(() -> Rendezvous.meet(n.apply(port), "abc", null, timeout));
        }
        List<Object> got = run(700, all);
        got.remove(1);
        return got;
    }

    @Test
    void aNodeThatCountsMoreNodesDoesNotTakeTheRealNodesPlace() throws Exception {
        // node 0 and node 1 say NNODES=2; a third process says NNODES=3, NODE_RANK=2: every one of them is told why
        List<Object> got = meetAs(List.of(p -> new Rendezvous.Node("127.0.0.1", p, 2, 0, 1),
                p -> new Rendezvous.Node("127.0.0.1", p, 3, 2, 1), p -> new Rendezvous.Node("127.0.0.1", p, 2, 1, 1)),
                Duration.ofSeconds(20), () -> { }, freePort());
        assertThat(got).allSatisfy(g -> assertThat(g).isInstanceOf(IllegalStateException.class)
                .asInstanceOf(org.assertj.core.api.InstanceOfAssertFactories.THROWABLE)
                .hasMessageContaining("a node says NODE_RANK=2, outside 1..1"));
    }

    @Test
    void aRepeatedNodeRankAndAnotherGpuCountAreNamed() throws Exception {
        List<Object> twice = meet(3, List.of(0, 1, 1), Map.of(), Duration.ofSeconds(20));
        assertThat(twice).allSatisfy(g -> assertThat(((Throwable) g).getMessage()).contains("two nodes say NODE_RANK=1"));
        List<Object> gpus = meetAs(List.of(p -> new Rendezvous.Node("127.0.0.1", p, 2, 0, 2),
                p -> new Rendezvous.Node("127.0.0.1", p, 2, 1, 4)), Duration.ofSeconds(20), () -> { }, freePort());
        assertThat(gpus).allSatisfy(g -> assertThat(((Throwable) g).getMessage())
                .contains("node 1 has GPUS_PER_NODE=4, node 0 2"));
    }

    interface Talk {
        void with(java.net.Socket s) throws java.io.IOException;
    }

    /** Connects to node 0 once it listens (retrying for 5 s) and runs {@code talk}; the socket is then closed. */
    static void onceListening(int port, Talk talk) {
        for (int attempt = 0; attempt < 50; attempt++) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                talk.with(s);
                return;
            } catch (java.io.IOException notYet) {
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    static List<Object> twoNodes(Duration timeout, Runnable beforeNode1, int port) throws Exception {
        return meetAs(List.of(p -> new Rendezvous.Node("127.0.0.1", p, 2, 0, 1), p -> new Rendezvous.Node("127.0.0.1", p, 2, 1, 1)),
                timeout, beforeNode1, port);
    }

    @Test
    void connectionsThatAreNotNodesAreIgnored() throws Exception {
        int port = freePort();
        // a half-sent hello and a stranger's bytes reach node 0 before node 1 does: the run still starts
        Runnable strangers = () -> {
            for (byte[] bytes : List.of(new byte[] {0x4c, 0x54}, "GET / HTTP/1.0\r\n\r\n".getBytes())) {
                onceListening(port, s -> {
                    s.getOutputStream().write(bytes);
                    s.getOutputStream().flush();
                });
            }
        };
        assertThat(twoNodes(Duration.ofSeconds(20), strangers, port)).allSatisfy(g -> assertThat(g).isEqualTo(new byte[] {9, 9}));
    }

    @Test
    void aSilentConnectionDoesNotKeepTheNodesApart() throws Exception {
        int port = freePort();
        // connects and says nothing for longer than the nodes' timeout: node 0 gives up on it after 10 s
        Thread silent = new Thread(() -> onceListening(port, s -> {
            try {
                Thread.sleep(60_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        silent.start();
        try {
            assertThat(twoNodes(Duration.ofSeconds(25), () -> { }, port)).allSatisfy(g -> assertThat(g).isEqualTo(new byte[] {9, 9}));
        } finally {
            silent.interrupt();
            silent.join();
        }
    }

    @Test
    void aNodeOfTheFirstVersionIsToldToUpgrade() throws Exception {
        int port = freePort();
        String[] told = new String[1];
        Runnable oldNode = () -> onceListening(port, s -> {
            var out = new java.io.DataOutputStream(s.getOutputStream());
            out.writeInt(1); // version 1's hello: version, node rank, GPUs, digest
            out.writeInt(1);
            out.writeInt(1);
            out.writeUTF("abc");
            out.flush();
            var in = new java.io.DataInputStream(s.getInputStream());
            told[0] = in.readBoolean() ? "the secret" : in.readUTF();
        });
        List<Object> got = meetAs(List.of(p -> new Rendezvous.Node("127.0.0.1", p, 2, 0, 1)), Duration.ofSeconds(8),
                oldNode, port);
        assertThat(told[0]).contains("node 1 runs another version of longtune's rendezvous (1, node 0 2)");
        assertThat(((Throwable) got.get(0)).getMessage()).contains("another version");
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
        assertThatThrownBy(() -> Rendezvous.Node.fromEnvironment(Map.of("NNODES", "two"), 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("NNODES=two is not a whole number");
        assertThatThrownBy(() -> Rendezvous.Node.fromEnvironment(Map.of("NNODES", "2", "NODE_RANK", "1", "MASTER_ADDR",
                "h", "MASTER_PORT", "29500x"), 4)).hasMessageContaining("MASTER_PORT=29500x is not a whole number");
        assertThat(Rendezvous.digest("a")).hasSize(16).isNotEqualTo(Rendezvous.digest("b"));
    }

    @Test
    void aNodeWhoseMasterNeverListensIsTold() throws Exception {
        Rendezvous.Node node = new Rendezvous.Node("127.0.0.1", freePort(), 2, 1, 1);
        assertThatThrownBy(() -> Rendezvous.meet(node, "abc", null, Duration.ofSeconds(1)))
                .hasMessageContaining("did not answer within 1 s").hasMessageContaining("MASTER_ADDR/MASTER_PORT");
    }
}
