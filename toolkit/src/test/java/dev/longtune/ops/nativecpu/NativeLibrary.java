package dev.longtune.ops.nativecpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Test support: on linux-x86_64 the native kernels must load (a silent fallback would test nothing). */
final class NativeLibrary {
    private NativeLibrary() {}

    static void requireLoaded() {
        boolean linuxX64 = System.getProperty("os.name").toLowerCase().contains("linux")
                && System.getProperty("os.arch").matches("amd64|x86_64");
        assumeTrue(linuxX64, "native CPU kernels are built for linux-x86_64 only");
        assertThat(NativeCpuOps.isAvailable()).as("native CPU kernels load: %s", NativeCpuOps.unavailableReason()).isTrue();
        assertThat(NativeCpuOps.unavailableReason()).isNull();
        assertThat(NativeCpuOps.threads()).isPositive();
    }
}
