package dev.longtune.config;

import java.util.Arrays;
import java.util.Locale;
import java.util.function.Function;

/** Parses the short lower-case ids of the technique enums, listing the valid ones on a bad input. */
final class Names {
    private Names() {}

    static <E extends Enum<E>> E parse(Class<E> type, String value, Function<E, String> id) {
        String key = value == null ? "" : value.trim().toLowerCase(Locale.ROOT);
        for (E e : type.getEnumConstants()) {
            if (id.apply(e).equals(key)) {
                return e;
            }
        }
        throw new IllegalArgumentException("unknown " + type.getSimpleName() + " '" + value + "': use one of "
                + Arrays.stream(type.getEnumConstants()).map(id).toList());
    }
}
