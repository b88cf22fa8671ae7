package dev.longtune.cuda;

import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.cuda.nvrtc._nvrtcProgram;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Compiles kernels/cuda sources with NVRTC for one architecture: to a cubin for the GPU present (cached on
 * disk, keyed by the source's hash, the architecture and the NVRTC version) or to PTX (the architecture
 * test reads it). Our own headers ({@code #include "common.cuh"}, …) are pasted in; CUDA's own headers (mma.h) come from the
 * toolkit's include folder when one is found. A compile error carries NVRTC's log and the file's name.
 */
public final class NvrtcCompiler {
    /** The kernel sources, compiled together at the device's start. */
    public static final List<String> SOURCES = List.of("elementwise.cu", "rms_norm.cu", "rope.cu", "swiglu.cu",
            "embedding.cu", "cross_entropy.cu", "adamw.cu", "flash_attention.cu", "flash_attention_sm90.cu");

    /**
     * Sources that use arch-specific instructions (wgmma): compiled for sm_90a rather than sm_90 on Hopper, and for
     * the plain architecture elsewhere, where their entry points trap and are never launched.
     */
    static final java.util.Set<String> ARCH_SPECIFIC = java.util.Set.of("flash_attention_sm90.cu");

    /** The architecture name NVRTC gets for {@code file}: "90a" for an arch-specific source on Hopper, else "90". */
    public static String archName(String file, int arch) {
        return arch + (arch == 90 && ARCH_SPECIFIC.contains(file) ? "a" : "");
    }

    private final Path cacheDir;
    private final int[] version = new int[2];

    public NvrtcCompiler(Path cacheDir) {
        Loader.load(nvrtc.class);
        int[] major = new int[1], minor = new int[1];
        check(nvrtc.nvrtcVersion(major, minor), "nvrtcVersion", null);
        version[0] = major[0];
        version[1] = minor[0];
        this.cacheDir = cacheDir;
    }

    /** ~/.cache/longtune/cuda-kernels, or $LONGTUNE_CACHE/cuda-kernels. */
    public static Path defaultCacheDir() {
        String env = System.getenv("LONGTUNE_CACHE");
        Path base = env != null && !env.isBlank() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache", "longtune");
        return base.resolve("cuda-kernels");
    }

    public String version() { return version[0] + "." + version[1]; }

    /** Architectures this NVRTC compiles for, as numbers like 75, 80, 90. */
    public List<Integer> supportedArchitectures() {
        int[] n = new int[1];
        check(nvrtc.nvrtcGetNumSupportedArchs(n), "nvrtcGetNumSupportedArchs", null);
        int[] archs = new int[n[0]];
        check(nvrtc.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs", null);
        List<Integer> out = new ArrayList<>();
        for (int a : archs) {
            out.add(a);
        }
        return out;
    }

    /** An include of one of kernels/cuda's own headers (common.cuh, flash_attention_rows.cuh), alone on its line. */
    private static final java.util.regex.Pattern LOCAL_INCLUDE =
            java.util.regex.Pattern.compile("(?m)^#include \"([^\"/]+\\.cuh)\"[ \\t]*$");

    /**
     * A kernel file's text with each of kernels/cuda's headers it includes pasted in place of its #include (once:
     * a header included again, directly or through another, leaves an empty line), so NVRTC needs no include path
     * of ours. CUDA's own headers (&lt;mma.h&gt;) stay includes.
     */
    public static String source(String file) {
        return paste(resource(file), new java.util.HashSet<>());
    }

    private static String paste(String text, java.util.Set<String> seen) {
        java.util.regex.Matcher m = LOCAL_INCLUDE.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String header = m.group(1);
            String pasted = seen.add(header) ? paste(resource(header), seen) : "";
            m.appendReplacement(out, java.util.regex.Matcher.quoteReplacement(pasted));
        }
        m.appendTail(out);
        return out.toString();
    }

    private static String resource(String file) {
        try (InputStream in = NvrtcCompiler.class.getResourceAsStream("/kernels/cuda/" + file)) {
            if (in == null) {
                throw new IllegalStateException("kernel source kernels/cuda/" + file + " is not on the class path");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private List<String> options(String file, int arch, boolean cubin) {
        List<String> o = new ArrayList<>(List.of(
                (cubin ? "--gpu-architecture=sm_" : "--gpu-architecture=compute_") + archName(file, arch), "--std=c++17",
                "-lineinfo"));
        Path include = cudaInclude();
        if (include != null) {
            o.add("-I" + include);
        }
        return o;
    }

    static Path cudaInclude() {
        for (String env : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
            String v = System.getenv(env);
            if (v != null && Files.isRegularFile(Path.of(v, "include", "mma.h"))) {
                return Path.of(v, "include");
            }
        }
        Path p = Path.of("/usr/local/cuda/include");
        return Files.isRegularFile(p.resolve("mma.h")) ? p : null;
    }

    /** The cubin of {@code file} for sm_{arch}, from the disk cache when it was compiled before. */
    public byte[] cubin(String file, int arch, List<String> extraOptions) {
        String src = source(file);
        List<String> opts = options(file, arch, true);
        opts.addAll(extraOptions);
        String key = sha256(src + "\0" + String.join(" ", opts)).substring(0, 16);
        Path cached = cacheDir.resolve(file.replace(".cu", "") + "-sm" + archName(file, arch) + "-nvrtc" + version() + "-" + key + ".cubin");
        try {
            if (Files.isRegularFile(cached)) {
                return Files.readAllBytes(cached);
            }
            byte[] bin = compile(file, src, opts, true);
            Files.createDirectories(cacheDir);
            Path tmp = Files.createTempFile(cacheDir, "kernel", ".tmp");
            Files.write(tmp, bin);
            Files.move(tmp, cached, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return bin;
        } catch (IOException e) {
            throw new UncheckedIOException("kernel cache " + cacheDir, e);
        }
    }

    /** PTX of {@code file} for compute_{arch} (virtual architecture), never cached. */
    public String ptx(String file, int arch, List<String> extraOptions) {
        List<String> opts = options(file, arch, false);
        opts.addAll(extraOptions);
        byte[] b = compile(file, source(file), opts, false);
        int n = b.length;
        while (n > 0 && b[n - 1] == 0) {
            n--;
        }
        return new String(b, 0, n, StandardCharsets.US_ASCII);
    }

    /** PTX of a source given as text (what a compile error looks like is tested with this). */
    String ptxOf(String file, String src, int arch) {
        return new String(compile(file, src, options(file, arch, false), false), StandardCharsets.US_ASCII);
    }

    private byte[] compile(String file, String src, List<String> opts, boolean cubin) {
        _nvrtcProgram prog = new _nvrtcProgram();
        check(nvrtc.nvrtcCreateProgram(prog, new BytePointer(src), new BytePointer(file), 0, (PointerPointer<?>) null,
                (PointerPointer<?>) null), "nvrtcCreateProgram(" + file + ")", null);
        try {
            PointerPointer<BytePointer> o = new PointerPointer<>(opts.toArray(new String[0]));
            int err = nvrtc.nvrtcCompileProgram(prog, opts.size(), o);
            if (err != nvrtc.NVRTC_SUCCESS) {
                throw new KernelCompileException("NVRTC " + version() + " could not compile kernels/cuda/" + file + " with "
                        + String.join(" ", opts) + ": " + nvrtc.nvrtcGetErrorString(err).getString() + "\n" + log(prog));
            }
            SizeTPointer size = new SizeTPointer(1);
            if (cubin) {
                check(nvrtc.nvrtcGetCUBINSize(prog, size), "nvrtcGetCUBINSize", file);
                BytePointer out = new BytePointer(size.get());
                check(nvrtc.nvrtcGetCUBIN(prog, out), "nvrtcGetCUBIN", file);
                byte[] b = new byte[(int) size.get()];
                out.get(b);
                return b;
            }
            check(nvrtc.nvrtcGetPTXSize(prog, size), "nvrtcGetPTXSize", file);
            BytePointer out = new BytePointer(size.get());
            check(nvrtc.nvrtcGetPTX(prog, out), "nvrtcGetPTX", file);
            byte[] b = new byte[(int) size.get()];
            out.get(b);
            return b;
        } finally {
            nvrtc.nvrtcDestroyProgram(prog);
        }
    }

    private static String log(_nvrtcProgram prog) {
        SizeTPointer size = new SizeTPointer(1);
        nvrtc.nvrtcGetProgramLogSize(prog, size);
        BytePointer log = new BytePointer(size.get());
        nvrtc.nvrtcGetProgramLog(prog, log);
        return log.getString();
    }

    private static void check(int err, String what, String file) {
        if (err != nvrtc.NVRTC_SUCCESS) {
            throw new KernelCompileException(what + (file == null ? "" : " for " + file) + " failed: "
                    + nvrtc.nvrtcGetErrorString(err).getString());
        }
    }

    static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** NVRTC refused a kernel: the message holds its log. */
    public static final class KernelCompileException extends RuntimeException {
        public KernelCompileException(String m) { super(m); }
    }
}
