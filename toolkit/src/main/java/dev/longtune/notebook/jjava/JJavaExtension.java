package dev.longtune.notebook.jjava;

import org.dflib.jjava.jupyter.Extension;
import org.dflib.jjava.jupyter.kernel.BaseKernel;

/**
 * longtune in a stock JJava kernel. JJava loads extensions it finds on its class path
 * (META-INF/services/org.dflib.jjava.jupyter.Extension), so adding the toolkit jar with {@code %jars} or
 * JJAVA_CLASSPATH registers longtune's renderers; {@link #install} can also be called by hand.
 */
public final class JJavaExtension implements Extension {
    @Override
    public void install(BaseKernel kernel) {
        JJavaRenderers.registerAll(kernel.getRenderer());
    }
}
