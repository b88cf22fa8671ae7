package dev.longtune.cli;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** train --keep-attention's value: all, a number of layers, or auto (the most layers the host's memory holds). */
class KeptAttentionTest {
    @Test
    void valuesNameLayersOfTheModel() {
        assertThat(KeptAttention.parse(null, 32)).isZero();
        assertThat(KeptAttention.parse("all", 32)).isEqualTo(32);
        assertThat(KeptAttention.parse("", 32)).isEqualTo(32);
        assertThat(KeptAttention.parse(" 20 ", 32)).isEqualTo(20);
        assertThat(KeptAttention.parse("0", 32)).isZero();
        assertThat(KeptAttention.parse("AUTO", 32)).isEqualTo(KeptAttention.AUTO);
        assertThatThrownBy(() -> KeptAttention.parse("33", 32)).hasMessageContaining("--keep-attention 33")
                .hasMessageContaining("0 to 32");
        assertThatThrownBy(() -> KeptAttention.parse("half", 32)).hasMessageContaining("all, auto, or a number");
    }

    @Test
    void aRunThatFitsOnlyWithFewerKeptLayersSaysHowMany() {
        java.util.function.IntFunction<String> check = n -> n <= 20 ? null : "needs " + n + " layers' worth";
        assertThat(KeptAttention.advise(32, 32, check)).isEqualTo("needs 32 layers' worth; keeping attention for fewer "
                + "layers fits: --keep-attention 20 (or auto)");
        assertThat(KeptAttention.advise(12, 32, check)).isNull();
        // when nothing fits, even without kept attention, the objection is the check's alone
        assertThat(KeptAttention.advise(32, 32, n -> "too big")).isEqualTo("too big");
        assertThat(KeptAttention.advise(0, 32, n -> "too big")).isEqualTo("too big");
    }

    @Test
    void autoKeepsTheMostLayersThatFit() {
        assertThat(KeptAttention.resolve(KeptAttention.AUTO, 32, n -> n <= 17)).isEqualTo(17);
        assertThat(KeptAttention.resolve(KeptAttention.AUTO, 32, n -> true)).isEqualTo(32);
        assertThat(KeptAttention.resolve(KeptAttention.AUTO, 32, n -> n == 0)).isZero();
        assertThat(KeptAttention.resolve(KeptAttention.AUTO, 1, n -> n <= 0)).isZero();
        // a number is what was asked for, whatever fits (the host check then refuses it with the planner's figures)
        assertThat(KeptAttention.resolve(12, 32, n -> false)).isEqualTo(12);
    }
}
