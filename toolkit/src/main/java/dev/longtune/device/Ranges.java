package dev.longtune.device;

import dev.longtune.tensor.Tensor;

/** The checks every device makes for {@link Device#copyRange}. */
public final class Ranges {
    private Ranges() {}

    public static void check(Tensor dst, long dstOffset, Tensor src, long srcOffset, long count) {
        if (dst.dtype() != src.dtype()) {
            throw new IllegalArgumentException("copyRange " + src.name() + " (" + src.dtype() + ") -> " + dst.name() + " ("
                    + dst.dtype() + "): the dtypes differ");
        }
        if (count < 0 || dstOffset < 0 || srcOffset < 0 || dstOffset + count > dst.numel() || srcOffset + count > src.numel()) {
            throw new IllegalArgumentException(String.format("copyRange of %d elements from %s[%d…] (%d) to %s[%d…] (%d): "
                    + "out of bounds", count, src.name(), srcOffset, src.numel(), dst.name(), dstOffset, dst.numel()));
        }
    }
}
