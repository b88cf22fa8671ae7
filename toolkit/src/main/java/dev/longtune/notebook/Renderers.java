package dev.longtune.notebook;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.Renderer;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;

/** longtune's {@link Views} registered on a basekernel {@link Renderer}: our kernel and IJava. */
public final class Renderers {
    private Renderers() {}

    public static void registerAll(Renderer renderer) {
        for (View<?> view : Views.ALL) {
            register(renderer, view);
        }
    }

    private static <T> void register(Renderer renderer, View<T> view) {
        renderer.createRegistration(view.type())
                .preferring(view.preferred().toArray(String[]::new))
                .supporting(view.supported().toArray(String[]::new))
                .register((value, ctx) -> view.renderInto(value,
                        (mime, data) -> ctx.renderIfRequested(MIMEType.parse(mime), data)));
    }

    /** Renders without a kernel, for tests and for saving what a notebook would show. */
    public static DisplayData render(Object value, String... mimeTypes) {
        Renderer r = new Renderer();
        registerAll(r);
        return mimeTypes.length == 0 ? r.render(value) : r.renderAs(value, mimeTypes);
    }
}
