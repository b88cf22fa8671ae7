package dev.longtune.plan;

import java.util.Locale;

/** Binary-unit formatting used by every table: MiB and GiB as the study reports them. */
public final class Units {
    public static final long KiB = 1L << 10;
    public static final long MiB = 1L << 20;
    public static final long GiB = 1L << 30;

    private Units() {}

    public static double mib(long bytes) { return bytes / (double) MiB; }

    public static double gib(long bytes) { return bytes / (double) GiB; }

    /** e.g. {@code 7,711.63 MiB} below 10 GiB and {@code 286.43 GiB} above. */
    public static String human(long bytes) {
        return bytes < 10 * GiB ? String.format(Locale.ROOT, "%,.2f MiB", mib(bytes))
                : String.format(Locale.ROOT, "%,.2f GiB", gib(bytes));
    }

    public static String count(long n) { return String.format(Locale.ROOT, "%,d", n); }

    /** Smallest power of two ≥ n (n ≥ 1). */
    public static long powerOfTwoCeil(long n) {
        if (n <= 1) {
            return 1;
        }
        return Long.highestOneBit(n - 1) << 1;
    }

    /** n rounded up to a multiple of {@code step}. */
    public static long roundUp(long n, long step) { return (n + step - 1) / step * step; }

    /** Parses {@code 65536}, {@code 64K}, {@code 128k}, {@code 1M} (K = 1024 tokens). */
    public static long parseTokens(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT).replace("_", "").replace(",", "");
        long mult = 1;
        if (t.endsWith("K")) {
            mult = 1024;
            t = t.substring(0, t.length() - 1);
        } else if (t.endsWith("M")) {
            mult = 1024 * 1024;
            t = t.substring(0, t.length() - 1);
        }
        try {
            return Long.parseLong(t) * mult;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a token count: '" + s + "' (use e.g. 65536 or 64K)");
        }
    }

    /** Parses {@code 16GiB}, {@code 48G}, {@code 512MiB}, or a plain byte count. */
    public static long parseBytes(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT).replace("IB", "").replace("B", "");
        long mult = 1;
        char last = t.isEmpty() ? ' ' : t.charAt(t.length() - 1);
        switch (last) {
            case 'K' -> mult = KiB;
            case 'M' -> mult = MiB;
            case 'G' -> mult = GiB;
            case 'T' -> mult = 1024 * GiB;
            default -> { }
        }
        if (mult > 1) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            return Math.round(Double.parseDouble(t) * mult);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a size: '" + s + "' (use e.g. 16GiB or 512MiB)");
        }
    }
}
