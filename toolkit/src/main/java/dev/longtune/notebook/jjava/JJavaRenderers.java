package dev.longtune.notebook.jjava;

import dev.longtune.notebook.ViewsAccess;
import org.dflib.jjava.jupyter.kernel.display.Renderer;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;

/** longtune's views registered on JJava's renderer (a fork of basekernel under org.dflib.jjava). */
public final class JJavaRenderers {
    private JJavaRenderers() {}

    public static void registerAll(Renderer renderer) {
        ViewsAccess.forEach(new ViewsAccess.Registrar() {
            @Override
            public <T> void register(Class<T> type, String[] preferred, String[] supported, ViewsAccess.RenderCall render) {
                renderer.createRegistration(type).preferring(preferred).supporting(supported)
                        .register((value, ctx) -> render.renderInto(value,
                                (mime, data) -> ctx.renderIfRequested(MIMEType.parse(mime), data)));
            }
        });
    }
}
