package dev.longtune.ops;

import java.util.Arrays;

/** Argument checks shared by {@link FlashAttention} and its fp64 reference. */
public final class AttentionShapes {
    private AttentionShapes() {}

    /**
     * Checks T, the head counts, the head dim, the lengths of q, k and v, and the document offsets
     * {@code cuSeqlens} (length docs+1, starting at 0, ending at T, non-decreasing: an empty document is
     * allowed and attends to nothing).
     */
    // q is (T, Hq, D), k and v are (T, Hkv, D)
    public static void check(int qLength, int kLength, int vLength, int[] cuSeqlens,
                             int t, int hq, int hkv, int d) {
        require(t > 0 && hq > 0 && hkv > 0 && d > 0,
                "T, Hq, Hkv and D must be positive, got T=" + t + " Hq=" + hq + " Hkv=" + hkv + " D=" + d);
        require(hq % hkv == 0, "Hq=" + hq + " is not a multiple of Hkv=" + hkv + "; GQA needs Hq % Hkv == 0");
        require(qLength == t * hq * d, "q has " + qLength + " elements, expected T*Hq*D = " + t * hq * d);
        require(kLength == t * hkv * d, "k has " + kLength + " elements, expected T*Hkv*D = " + t * hkv * d);
        require(vLength == t * hkv * d, "v has " + vLength + " elements, expected T*Hkv*D = " + t * hkv * d);
        require(cuSeqlens.length >= 2 && cuSeqlens[0] == 0 && cuSeqlens[cuSeqlens.length - 1] == t,
                "cuSeqlens must start at 0 and end at T=" + t + " (length docs+1), got "
                        + Arrays.toString(cuSeqlens));
        for (int doc = 0; doc + 1 < cuSeqlens.length; doc++) {
            require(cuSeqlens[doc + 1] >= cuSeqlens[doc],
                    "cuSeqlens must be non-decreasing (cumulative document lengths), got "
                            + Arrays.toString(cuSeqlens));
        }
    }

    public static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }
}
