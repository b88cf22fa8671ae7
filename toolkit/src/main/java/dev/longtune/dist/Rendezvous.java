package dev.longtune.dist;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * How the processes of a multi-node run meet, through the variables PyTorch's launcher uses: {@code MASTER_ADDR} and
 * {@code MASTER_PORT} (where node 0 listens), {@code NNODES}, {@code NODE_RANK} and {@code GPUS_PER_NODE}. Node 0
 * waits for every other node; each sends its node rank, its GPU count and a digest of its run's configuration; node
 * 0 checks them all and hands every node the same secret (the NCCL unique id), or, to every node, the reason the run
 * cannot start (a missing node, a node rank twice, different configurations or GPU counts).
 */
public final class Rendezvous {
    /** One node's place in the run. */
    public record Node(String masterAddress, int masterPort, int nodes, int nodeRank, int gpusPerNode) {
        public Node {
            if (nodes < 1 || nodeRank < 0 || nodeRank >= nodes || gpusPerNode < 1 || masterPort < 1 || masterPort > 65535) {
                throw new IllegalArgumentException(String.format("a multi-node run needs 0 <= NODE_RANK (%d) < NNODES (%d), "
                        + "GPUS_PER_NODE >= 1 (%d) and a MASTER_PORT in 1..65535 (%d)", nodeRank, nodes, gpusPerNode, masterPort));
            }
        }

        public int worldSize() { return nodes * gpusPerNode; }

        /** The global rank of this node's local GPU {@code gpu}. */
        public int rank(int gpu) { return nodeRank * gpusPerNode + gpu; }

        /**
         * From the environment, or null when this is not a multi-node run (NNODES unset or 1). {@code gpus} is this
         * node's GPU count when GPUS_PER_NODE is not set.
         */
        public static Node fromEnvironment(Map<String, String> env, int gpus) {
            int nodes = number(env, "NNODES", "1");
            if (nodes <= 1) {
                return null;
            }
            for (String v : new String[] {"MASTER_ADDR", "MASTER_PORT", "NODE_RANK"}) {
                if (env.get(v) == null || env.get(v).isBlank()) {
                    throw new IllegalArgumentException("NNODES=" + nodes + " but " + v + " is not set: a multi-node run needs "
                            + "MASTER_ADDR, MASTER_PORT, NNODES, NODE_RANK (and GPUS_PER_NODE, else --gpus) on every node");
                }
            }
            return new Node(env.get("MASTER_ADDR").strip(), number(env, "MASTER_PORT", null), nodes,
                    number(env, "NODE_RANK", null), number(env, "GPUS_PER_NODE", String.valueOf(gpus)));
        }

        private static int number(Map<String, String> env, String name, String otherwise) {
            String v = env.getOrDefault(name, otherwise);
            try {
                return Integer.parseInt(v.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(name + "=" + v + " is not a whole number (a multi-node run reads "
                        + "MASTER_PORT, NNODES, NODE_RANK and GPUS_PER_NODE as numbers)");
            }
        }
    }

    /** The first bytes of every hello ("LTRV"): a connection that starts otherwise is not a longtune node. */
    private static final int MAGIC = 0x4c545256;
    private static final int VERSION = 2;
    /** How long a connection may take to send its hello (a node sends it at once). */
    private static final long HELLO_MILLIS = 10_000;
    /** How long node 0 goes on telling late nodes why the run cannot start, at most. */
    private static final long LATE_MILLIS = 30_000;

    private Rendezvous() {}

    /**
     * Meets the other nodes and returns the secret node 0 chose ({@code secret} is used on node 0 and ignored
     * elsewhere). Fails on every node, with the same reason, if any node is missing after {@code timeout}, has a
     * different configuration digest or GPU count, or repeats a node rank.
     */
    public static byte[] meet(Node node, String configDigest, byte[] secret, Duration timeout) {
        try {
            return node.nodeRank() == 0 ? host(node, configDigest, secret, timeout) : join(node, configDigest, timeout);
        } catch (IOException e) {
            throw new IllegalStateException("rendezvous at " + node.masterAddress() + ":" + node.masterPort() + " (node "
                    + node.nodeRank() + " of " + node.nodes() + "): " + e.getMessage(), e);
        }
    }

    private record Hello(int version, int nodeRank, int gpus, String digest, Socket socket) {}

    private static byte[] host(Node node, String digest, byte[] secret, Duration timeout) throws IOException {
        Map<Integer, Hello> joined = new TreeMap<>();
        java.util.Set<Integer> answered = new java.util.HashSet<>();
        String problem = null;
        long deadline = System.nanoTime() + timeout.toNanos();
        boolean ended = false; // the loop ran to its end (every node joined, or the reason it cannot start is known)
        List<Integer> lost = new ArrayList<>(); // nodes that went away before they took their answer
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(node.masterPort()));
            while (joined.size() < node.nodes() - 1) {
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) {
                    if (problem == null) {
                        problem = "nodes " + missing(node, joined) + " did not join within " + timeout.toSeconds()
                                + " s: start them with the same MASTER_ADDR/MASTER_PORT and NNODES=" + node.nodes();
                    }
                    break;
                }
                server.setSoTimeout((int) Math.min(left, Integer.MAX_VALUE));
                Socket s;
                try {
                    s = server.accept();
                } catch (SocketTimeoutException e) {
                    continue;
                }
                Hello h = hello(s, Math.min(left, HELLO_MILLIS));
                if (h == null) {
                    continue; // not a longtune node (a port scan, a health check, a silent connection): ignored
                }
                String wrong = null; // a problem with this hello; a node with a bad or repeated rank is not joined
                if (h.version() != VERSION) {
                    wrong = "node " + h.nodeRank() + " runs another version of longtune's rendezvous (" + h.version()
                            + ", node 0 " + VERSION + "): run the same longtune on every node";
                } else if (h.nodeRank() <= 0 || h.nodeRank() >= node.nodes()) {
                    wrong = "a node says NODE_RANK=" + h.nodeRank() + ", outside 1.." + (node.nodes() - 1) + " (NNODES="
                            + node.nodes() + " on node 0): give every node the same NNODES and its own NODE_RANK";
                } else if (joined.containsKey(h.nodeRank())) {
                    wrong = "two nodes say NODE_RANK=" + h.nodeRank() + ": give each node its own";
                }
                if (wrong != null) {
                    answerQuietly(s, wrong, null);
                } else {
                    joined.put(h.nodeRank(), h);
                    if (h.gpus() != node.gpusPerNode()) {
                        wrong = "node " + h.nodeRank() + " has GPUS_PER_NODE=" + h.gpus() + ", node 0 " + node.gpusPerNode()
                                + ": give every node the same";
                    } else if (!h.digest().equals(digest)) {
                        wrong = "node " + h.nodeRank() + " runs another configuration than node 0 (model, data, context, "
                                + "precision, stack, seed, steps must agree): digest " + h.digest() + " against " + digest;
                    }
                }
                if (wrong != null && problem == null) {
                    problem = wrong;
                    // the nodes still on their way (launches start nodes seconds apart) are told as they come, for a while
                    deadline = Math.min(deadline, System.nanoTime() + Math.min(LATE_MILLIS, timeout.toMillis() / 4) * 1_000_000L);
                }
                if (problem != null) {
                    for (Hello j : joined.values()) {
                        if (answered.add(j.nodeRank()) && !answerQuietly(j.socket(), problem, null)) {
                            lost.add(j.nodeRank());
                        }
                    }
                }
            }
            ended = true;
        } finally {
            // every node that joined gets the answer, also when node 0 itself failed here
            String toAll = problem != null ? problem : ended ? null : "node 0 failed while the nodes met: its error says why";
            for (Hello h : joined.values()) {
                if (answered.add(h.nodeRank()) && !answerQuietly(h.socket(), toAll, secret)) {
                    lost.add(h.nodeRank());
                }
            }
        }
        if (problem != null) {
            throw new IllegalStateException(problem);
        }
        if (!lost.isEmpty()) {
            // the others have the secret and will wait in NCCL's set-up for these: better they time out than this hang
            throw new IllegalStateException("nodes " + lost + " went away before they took node 0's answer: start the run again");
        }
        return secret.clone();
    }

    /** {@link #answer}, false instead of an exception when the node has gone. */
    private static boolean answerQuietly(Socket s, String problem, byte[] secret) {
        try {
            answer(s, problem, secret);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** A node's hello from {@code s}, or null (the socket closed) when what arrives is not one. */
    private static Hello hello(Socket s, long timeoutMillis) {
        try {
            s.setSoTimeout((int) Math.min(timeoutMillis, Integer.MAX_VALUE));
            DataInputStream in = new DataInputStream(s.getInputStream());
            int first = in.readInt();
            if (first != MAGIC && first != 1) { // version 1 sent no magic number: its nodes are told to upgrade
                s.close();
                return null;
            }
            int version = first == 1 ? 1 : in.readInt(), rank = in.readInt(), gpus = in.readInt();
            return new Hello(version, rank, gpus, in.readUTF(), s);
        } catch (IOException e) {
            try {
                s.close();
            } catch (IOException ignored) {
                // nothing to do: it was not a node
            }
            return null;
        }
    }

    private static String missing(Node node, Map<Integer, Hello> joined) {
        StringBuilder sb = new StringBuilder();
        for (int r = 1; r < node.nodes(); r++) {
            if (!joined.containsKey(r)) {
                sb.append(sb.length() == 0 ? "" : ", ").append(r);
            }
        }
        return sb.toString();
    }

    private static void answer(Socket s, String problem, byte[] secret) throws IOException {
        try (s) {
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeBoolean(problem == null);
            if (problem == null) {
                out.writeInt(secret.length);
                out.write(secret);
            } else {
                out.writeUTF(problem);
            }
            out.flush();
        }
    }

    private static byte[] join(Node node, String digest, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(node.masterAddress(), node.masterPort()), 2000);
                s.setSoTimeout((int) Math.min(Math.max(1000, (deadline - System.nanoTime()) / 1_000_000 + 5000), Integer.MAX_VALUE));
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                out.writeInt(MAGIC);
                out.writeInt(VERSION);
                out.writeInt(node.nodeRank());
                out.writeInt(node.gpusPerNode());
                out.writeUTF(digest);
                out.flush();
                DataInputStream in = new DataInputStream(s.getInputStream());
                if (in.readBoolean()) {
                    byte[] secret = new byte[in.readInt()];
                    in.readFully(secret);
                    return secret;
                }
                throw new IllegalStateException(in.readUTF());
            } catch (java.net.SocketException e) {
                if (e instanceof java.net.ConnectException || e instanceof java.net.NoRouteToHostException) {
                    last = e; // node 0 not listening yet
                    pause();
                    continue;
                }
                throw new IllegalStateException("node 0 closed the connection (" + e.getMessage() + "): it stopped the "
                        + "run; its error says why", e);
            } catch (SocketTimeoutException e) {
                last = e;
                pause();
            }
        }
        throw new IllegalStateException("node 0 at " + node.masterAddress() + ":" + node.masterPort() + " did not answer within "
                + timeout.toSeconds() + " s (" + (last == null ? "no attempt" : last.getMessage()) + "): is it started, "
                + "and MASTER_ADDR/MASTER_PORT the same on every node?");
    }

    private static void pause() {
        try {
            Thread.sleep(200);
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for node 0", ie);
        }
    }

    /** A short digest of a run's configuration, so nodes with different settings refuse to start together. */
    public static String digest(String configuration) {
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(configuration.getBytes(StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(Arrays.copyOf(d, 8));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
