package dev.longtune.model;

import java.util.Locale;

/** Where the model's weights and gradients live between uses. */
public enum ParameterPlacement {
    /** On the compute device, all of them, all the time. */
    DEVICE("device"),
    /** In host memory (pinned on a GPU); a unit at a time on the device, prefetched (ZeRO-3-style offload). */
    HOST("host");

    public final String id;

    ParameterPlacement(String id) { this.id = id; }

    public static ParameterPlacement parse(String s) {
        for (ParameterPlacement p : values()) {
            if (p.id.equals(s.toLowerCase(Locale.ROOT))) {
                return p;
            }
        }
        throw new IllegalArgumentException("parameter placement '" + s + "': use device or host (offloaded)");
    }
}
