package dev.longtune.cli;

import java.util.Locale;

/**
 * The value of {@code --keep-attention}: {@code all} (also the option alone), a number of layers (the first ones), or
 * {@code auto}, as many layers as the host's memory holds by the planner.
 */
final class KeptAttention {
    /** {@code auto}, before it is resolved against the host's memory. */
    static final int AUTO = -1;

    private KeptAttention() {}

    /** Layers of a {@code layers}-layer model that keep their attention output; {@link #AUTO}; 0 when not asked. */
    static int parse(String value, int layers) {
        if (value == null) {
            return 0;
        }
        String v = value.trim().toLowerCase(Locale.ROOT);
        if (v.isEmpty() || v.equals("all")) {
            return layers;
        }
        return numberOrAuto("--keep-attention", value, layers, "all, auto, or");
    }

    /** {@code value} as {@link #AUTO} or a number of layers from 0 to {@code layers}; the error names {@code option}. */
    static int numberOrAuto(String option, String value, int layers, String choices) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        if (v.equals("auto")) {
            return AUTO;
        }
        try {
            int n = Integer.parseInt(v);
            if (n >= 0 && n <= layers) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // named below
        }
        throw new IllegalArgumentException(option + " " + value + ": use " + choices + " a number of layers from 0 to "
                + layers + " (the model's layers)");
    }

    /**
     * The host check's objection to a run with {@code kept} layers keeping attention (null when it fits), and where
     * the kept outputs are what does not fit, how many layers would.
     */
    static String advise(int kept, int layers, java.util.function.IntFunction<String> check) {
        String problem = check.apply(kept);
        if (problem == null || kept == 0 || check.apply(0) != null) {
            return problem;
        }
        int fits = resolve(AUTO, layers, n -> check.apply(n) == null);
        return problem + "; keeping attention for fewer layers fits: --keep-attention " + fits + " (or auto)";
    }

    /**
     * With {@code auto}, the most layers (from {@code layers} down to 0) for which {@code fits} holds: the planner's
     * host memory check for the run with that many layers kept.
     */
    static int resolve(int asked, int layers, java.util.function.IntPredicate fits) {
        if (asked != AUTO) {
            return asked;
        }
        int lo = 0, hi = layers;  // host memory grows with the kept layers: the largest that fits, by bisection
        if (fits.test(hi)) {
            return hi;
        }
        while (lo + 1 < hi) {
            int mid = (lo + hi) >>> 1;
            if (fits.test(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return lo;
    }
}
