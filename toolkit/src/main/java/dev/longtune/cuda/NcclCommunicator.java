package dev.longtune.cuda;

import dev.longtune.dist.Communicator;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.DoublePointer;

import static dev.longtune.tensor.MemoryCategory.COMM;

/**
 * A rank of NCCL, the collective library of GPU clusters, bound to one {@link CudaDevice}: every collective queues on
 * the device's communication stream, so they run in the order issued (NCCL does not promise progress to two
 * collectives of one communicator running at once); callers order them against compute with events. Ranks meet through a unique id that one of them makes
 * ({@link #newId}) and hands to the others: rank threads of one process share it directly; processes on several
 * nodes receive it over TCP. NCCL needs libnccl.so.2 on the library path (PyTorch's wheels ship it).
 */
public final class NcclCommunicator implements Communicator {
    private final ncclComm comm = new ncclComm();
    private final CudaDevice device;
    private final int rank, size;
    /**
     * Guards the communicator between its rank's thread (queuing collectives) and a thread that aborts it: once
     * {@link #abort} has run ncclCommAbort, no NCCL call may use it, nor may close destroy it again.
     */
    private final java.util.concurrent.locks.ReentrantLock lock = new java.util.concurrent.locks.ReentrantLock();
    private volatile Throwable aborted;
    private volatile int abortedBy = -1;

    private NcclCommunicator(CudaDevice device, ncclUniqueId id, int size, int rank) {
        this.device = device;
        this.rank = rank;
        this.size = size;
        check(nccl.ncclCommInitRank(comm, size, id, rank), "joining " + size + " ranks as rank " + rank);
    }

    /** A new meeting id, made by one rank (or the process that starts the rank threads). */
    public static ncclUniqueId newId() {
        ncclUniqueId id = new ncclUniqueId();
        check(nccl.ncclGetUniqueId(id), "making a unique id");
        return id;
    }

    /** The id's bytes, to send to another process. */
    public static byte[] bytes(ncclUniqueId id) {
        byte[] out = new byte[nccl.NCCL_UNIQUE_ID_BYTES];
        id.internal().get(out);
        return out;
    }

    public static ncclUniqueId fromBytes(byte[] bytes) {
        ncclUniqueId id = new ncclUniqueId();
        id.internal().put(bytes);
        return id;
    }

    /**
     * Joins rank {@code rank} of {@code size} on {@code device}; call on the thread that owns the device (its GPU is
     * current there). Blocks until every rank has joined.
     */
    public static NcclCommunicator join(CudaDevice device, ncclUniqueId id, int size, int rank) {
        return new NcclCommunicator(device, id, size, rank);
    }

    @Override public int rank() { return rank; }

    @Override public int size() { return size; }

    @Override
    public void allGather(Tensor send, Tensor recv) {
        requireSizes("allGather", send, recv, recv.numel() == send.numel() * size);
        lock.lock();
        try {
            requireNotAborted("allGather");
            check(nccl.ncclAllGather(Cuda.at(send.address()), Cuda.at(recv.address()), send.numel(), type(send.dtype()), comm,
                    device.communicationStream()), "allGather of " + send.name());
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void reduceScatter(Tensor send, Tensor recv) {
        requireSizes("reduceScatter", send, recv, send.numel() == recv.numel() * size);
        lock.lock();
        try {
            requireNotAborted("reduceScatter");
            check(nccl.ncclReduceScatter(Cuda.at(send.address()), Cuda.at(recv.address()), recv.numel(), type(send.dtype()),
                    nccl.ncclSum, comm, device.communicationStream()), "reduceScatter of " + send.name());
        } finally {
            lock.unlock();
        }
    }

    @Override
    public double[] allReduceSum(double... values) {
        int n = values.length;
        try (Tensor buffer = device.allocate("all-reduce buffer", DType.FP32, COMM, Math.max(1, 2 * n)); // n doubles
             DoublePointer host = new DoublePointer(values)) {
            // the buffer was cleared on the compute stream when allocated
            device.waitFor(dev.longtune.device.Device.Stream.COMMUNICATION, device.record(dev.longtune.device.Device.Stream.COMPUTE));
            Cuda.check(cudart.cudaMemcpyAsync(Cuda.at(buffer.address()), host, 8L * n, cudart.cudaMemcpyHostToDevice,
                    device.communicationStream()), "all-reduce upload");
            lock.lock();
            try {
                requireNotAborted("allReduceSum");
                check(nccl.ncclAllReduce(Cuda.at(buffer.address()), Cuda.at(buffer.address()), n, nccl.ncclFloat64, nccl.ncclSum,
                        comm, device.communicationStream()), "allReduceSum of " + n + " values");
            } finally {
                lock.unlock();
            }
            Cuda.check(cudart.cudaMemcpyAsync(host, Cuda.at(buffer.address()), 8L * n, cudart.cudaMemcpyDeviceToHost,
                    device.communicationStream()), "all-reduce download");
            Cuda.check(cudart.cudaStreamSynchronize(device.communicationStream()), "all-reduce"); // not under the lock:
            requireNotAborted("allReduceSum"); // an abort ends the wait, and what arrived is not the sum
            double[] out = new double[n];
            host.get(out);
            return out;
        }
    }

    private void requireSizes(String op, Tensor send, Tensor recv, boolean ok) {
        if (!ok || send.dtype() != recv.dtype() || !send.onDevice() || !recv.onDevice()) {
            throw new IllegalArgumentException(op + " on rank " + rank + " of " + size + ": send " + send + " and recv " + recv
                    + " must be GPU tensors of one dtype, n and " + size + " × n elements");
        }
    }

    private static int type(DType d) {
        return switch (d) {
            case FP32 -> nccl.ncclFloat32;
            case BF16 -> nccl.ncclBfloat16;
            case FP16 -> nccl.ncclFloat16;
            default -> throw new IllegalArgumentException("NCCL collectives on " + d + " tensors are not used");
        };
    }

    private static void check(int result, String what) {
        if (result != nccl.ncclSuccess) {
            throw new IllegalStateException("NCCL: " + what + " failed: " + nccl.ncclGetErrorString(result).getString()
                    + " (set NCCL_DEBUG=WARN for NCCL's own account)");
        }
    }

    private void requireNotAborted(String op) {
        Throwable a = aborted;
        if (a != null) {
            throw new dev.longtune.dist.PeerFailedException(op, rank, abortedBy, a);
        }
    }

    /**
     * ncclCommAbort: this rank's collectives in flight end (their kernels stop waiting for the failed rank), and every
     * later one throws. Only ranks of this process are aborted so; ranks of other nodes wait until they fail too.
     */
    @Override
    public void abort(int failedRank, Throwable cause) {
        boolean held = false;
        try {
            // a collective being queued holds the lock briefly; one stuck inside NCCL (connecting to the failed rank)
            // does not let go, and ncclCommAbort is what unsticks it
            held = lock.tryLock(2, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            synchronized (this) {
                if (aborted == null) {
                    abortedBy = failedRank;
                    aborted = cause;
                    nccl.ncclCommAbort(comm);
                }
            }
        } finally {
            if (held) {
                lock.unlock();
            }
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            synchronized (this) {
                if (aborted == null) {
                    aborted = new IllegalStateException("the communicator is closed");
                    nccl.ncclCommDestroy(comm);
                }
            }
        } finally {
            lock.unlock();
        }
    }
}
