package dev.longtune.kernel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.github.spencerpark.jupyter.channels.JupyterConnection;
import io.github.spencerpark.jupyter.kernel.KernelConnectionProperties;

/** Starts the kernel: {@code java -Djava.awt.headless=true -cp … dev.longtune.kernel.KernelMain <connection file>}. */
public final class KernelMain {
    // Held so the level stays set: the LogManager keeps loggers only weakly.
    private static final Logger ROOT_LOGGER = Logger.getLogger("");

    private KernelMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: KernelMain <jupyter connection file>");
            System.exit(2);
        }
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
        quietLogging();
        CellOutput.install(); // late output of a cell's threads goes to that cell
        KernelConnectionProperties properties = KernelConnectionProperties.parse(Files.readString(Path.of(args[0])));
        JupyterConnection connection = new JupyterConnection(properties);
        LongtuneKernel kernel = new LongtuneKernel();
        kernel.becomeHandlerForConnection(connection);
        connection.connect();
        connection.waitUntilClose();
        // Threads that cells started must not keep the process alive after shutdown.
        System.exit(0);
    }

    /** The basekernel logs every message at INFO under root-level logger names. */
    private static void quietLogging() {
        ROOT_LOGGER.setLevel(Level.WARNING);
        for (Handler h : ROOT_LOGGER.getHandlers()) {
            h.setLevel(Level.WARNING);
        }
    }
}
