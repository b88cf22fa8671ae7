package dev.longtune.cuda;

import org.junit.jupiter.api.Test;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link NvrtcCompiler#source}: the text NVRTC compiles holds each of kernels/cuda's headers a file includes, pasted
 * once in place of its #include, and no include of ours is left (NVRTC gets no include path for them).
 */
class KernelSourceTest {
    static int count(String text, String what) {
        Matcher m = Pattern.compile(Pattern.quote(what)).matcher(text);
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }

    @Test
    void everyKernelFileGetsItsHeadersPastedOnce() {
        for (String file : NvrtcCompiler.SOURCES) {
            String src = NvrtcCompiler.source(file);
            assertThat(src).as(file).doesNotContainPattern("(?m)^#include \"[^\"]+\\.cuh\"");
            // common.cuh's type list, defined once in it
            assertThat(count(src, "#define DEFINE_FOR_ALL_TYPES")).as(file + ": common.cuh").isEqualTo(1);
        }
        // both FlashAttention files share the row staging and the document lookup, pasted once each
        for (String file : new String[] {"flash_attention.cu", "flash_attention_sm90.cu"}) {
            String src = NvrtcCompiler.source(file);
            assertThat(count(src, "struct StagedRows {")).as(file).isEqualTo(1);
            assertThat(count(src, "__device__ __forceinline__ int doc_of(")).as(file).isEqualTo(1);
            // CUDA's own headers stay includes
            assertThat(src.contains("#include <mma.h>")).isEqualTo(file.equals("flash_attention.cu"));
        }
    }
}
