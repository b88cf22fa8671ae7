package dev.longtune.cuda;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Which devices the device tests run on, and what a missing GPU means. {@code -Dlongtune.test.devices} lists
 * them ({@code cpu,cuda} when unset); where it is set and names {@code cuda} (the GPU test set:
 * bench/gpu-test.sh), a GPU or a file the GPU tests need that is missing fails the test instead of skipping it,
 * so a broken GPU machine cannot pass by skipping everything. Without the property a test that needs a GPU is
 * skipped, and the report shows it skipped with the reason.
 */
public final class GpuTests {
    public static final String PROPERTY = "longtune.test.devices";

    private GpuTests() {}

    /** The devices to run on, in the order given. */
    public static List<String> devices() {
        List<String> out = new ArrayList<>();
        for (String d : System.getProperty(PROPERTY, "cpu,cuda").split(",")) {
            if (!d.isBlank()) {
                out.add(d.trim());
            }
        }
        return out;
    }

    /** Whether this run was asked for the GPU explicitly (so a missing GPU is a failure, not a skip). */
    public static boolean required() {
        String d = System.getProperty(PROPERTY);
        return d != null && List.of(d.split(",")).stream().map(String::trim).anyMatch(s -> s.startsWith("cuda"));
    }

    /** Skips (or, where the GPU is required, fails) unless a CUDA GPU is usable. */
    public static void assumeGpu() {
        assumeOrFail(Cuda.available(), "no GPU: " + (Cuda.available() ? "" : Cuda.whyUnavailable()));
    }

    /** Skips, or fails where the GPU test set was asked for, unless {@code condition} holds. */
    public static void assumeOrFail(boolean condition, String why) {
        if (condition) {
            return;
        }
        if (required()) {
            fail(why + " (-D" + PROPERTY + "=" + System.getProperty(PROPERTY) + " asks for the GPU test set)");
        }
        assumeTrue(false, why);
    }
}
