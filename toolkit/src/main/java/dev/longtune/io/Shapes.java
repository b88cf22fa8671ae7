package dev.longtune.io;

import java.util.Arrays;
import java.util.stream.Collectors;

/** Element counts and printing of tensor shapes ({@code long[]}, row-major, outermost first). */
final class Shapes {

    private Shapes() {}

    /** The product of the dimensions (1 for a scalar); {@link ArithmeticException} when it overflows a long. */
    static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** {@code [4096, 128256]}: the form Python prints, so messages read like the user's other tools. */
    static String format(long[] shape) {
        return Arrays.stream(shape).mapToObj(Long::toString).collect(Collectors.joining(", ", "[", "]"));
    }
}
