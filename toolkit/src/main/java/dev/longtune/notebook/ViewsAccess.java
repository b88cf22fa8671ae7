package dev.longtune.notebook;

import java.util.function.BiConsumer;
import java.util.function.Supplier;

/** Lets kernel adapters outside this package (JJava) register the package-private {@link Views}. */
public final class ViewsAccess {
    private ViewsAccess() {}

    /** Renders a value for the MIME types a front end asks for. */
    public interface RenderCall {
        void renderInto(Object value, BiConsumer<String, Supplier<Object>> sink);
    }

    /** Receives each view: its type, MIME types, and how to render it. */
    public interface Registrar {
        <T> void register(Class<T> type, String[] preferred, String[] supported, RenderCall render);
    }

    public static void forEach(Registrar registrar) {
        for (View<?> v : Views.ALL) {
            registrar.register(v.type(), v.preferred().toArray(String[]::new), v.supported().toArray(String[]::new),
                    v::renderInto);
        }
    }
}
