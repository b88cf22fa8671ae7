package dev.longtune.notebook;

import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * How one type looks in a notebook, independent of the kernel library: the MIME types it offers (the
 * preferred ones rendered by default, the supported ones on request) and, per MIME type, a supplier of
 * the data, so only what the front end asks for is computed.
 */
record View<T>(Class<T> type, List<String> preferred, List<String> supported,
               Function<T, Map<String, Supplier<Object>>> render) {

    static final String PNG = "image/png", SVG = "image/svg+xml", HTML = "text/html", TEXT = "text/plain";

    /** Renders {@code value} (of this view's type) for the requested MIME types through {@code sink}. */
    @SuppressWarnings("unchecked")
    void renderInto(Object value, java.util.function.BiConsumer<String, Supplier<Object>> sink) {
        render.apply((T) value).forEach(sink);
    }
}
