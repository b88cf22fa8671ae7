package dev.longtune.tensor;

/** The bytes of a tensor in a device's memory: an address, and how to give the block back. */
public interface DeviceStorage {
    long address();

    /** Returns the block to its allocator; called once, when the tensor is closed. */
    void release();
}
