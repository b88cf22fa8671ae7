package dev.longtune.data;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SequencePackerTest {

    private static final int PAD = SpecialTokens.LLAMA_3.padding();
    private static final int X = Tokenizer.IGNORE_INDEX;

    /** n tokens with ids start, start+1, …; the last {@code trained} of them carry labels. */
    private static TokenizedExample example(int start, int n, int trained) {
        int[] ids = IntStream.range(start, start + n).toArray();
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i >= n - trained ? ids[i] : X;
        }
        return new TokenizedExample(ids, labels);
    }

    @Test
    void documentsAreRecordedAsCumulativeOffsetsWithPositionsRestarting() {
        SequencePacker.Result r = new SequencePacker(10).pack(List.of(example(100, 4, 4), example(200, 3, 2),
                example(300, 5, 2)));
        assertThat(r.sequences()).hasSize(2);

        PackedSequence first = r.sequences().get(0);
        assertThat(first.inputIds()).containsExactly(100, 101, 102, 103, 200, 201, 202, PAD, PAD, PAD);
        assertThat(first.cuSeqlens()).containsExactly(0, 4, 7, 10);
        assertThat(first.documents()).isEqualTo(2);
        assertThat(first.padding()).isEqualTo(3);
        assertThat(first.positions()).containsExactly(0, 1, 2, 3, 0, 1, 2, 0, 1, 2);
        // each document's first label is masked: never predict across a boundary; padding is masked
        assertThat(first.labels()).containsExactly(X, 101, 102, 103, X, 201, 202, X, X, X);
        assertThat(first.maxSegmentLength()).isEqualTo(4);
        assertThat(first.trainedTokens()).isEqualTo(5);

        PackedSequence second = r.sequences().get(1);
        assertThat(second.cuSeqlens()).containsExactly(0, 5, 10);
        assertThat(second.positions()).containsExactly(0, 1, 2, 3, 4, 0, 1, 2, 3, 4);

        SequencePacker.Stats s = r.stats();
        assertThat(s.examples()).isEqualTo(3);
        assertThat(s.packed()).isEqualTo(3);
        assertThat(s.sequences()).isEqualTo(2);
        assertThat(s.tokens()).isEqualTo(12);
        assertThat(s.padding()).isEqualTo(8);
        assertThat(s.fill()).isEqualTo(0.6);
    }

    @Test
    void anExactFitHasNoPaddingSegment() {
        PackedSequence p = new SequencePacker(6).pack(List.of(example(0, 2, 2), example(10, 4, 4))).sequences().get(0);
        assertThat(p.cuSeqlens()).containsExactly(0, 2, 6);
        assertThat(p.padding()).isZero();
        assertThat(p.documents()).isEqualTo(2);
    }

    @Test
    void targetsAreShiftedLabelsThatStopAtEveryBoundary() {
        PackedSequence p = new SequencePacker(8).pack(List.of(example(100, 3, 3), example(200, 3, 3))).sequences()
                .get(0);
        assertThat(p.labels()).containsExactly(X, 101, 102, X, 201, 202, X, X);
        assertThat(p.targets()).containsExactly(101, 102, X, 201, 202, X, X, X);
    }

    @Test
    void overlongExamplesAreTruncatedAndCounted() {
        SequencePacker.Result r = new SequencePacker(5).pack(List.of(example(0, 8, 8), example(100, 2, 2)));
        assertThat(r.sequences()).hasSize(2);
        assertThat(r.sequences().get(0).inputIds()).containsExactly(0, 1, 2, 3, 4);
        assertThat(r.sequences().get(0).cuSeqlens()).containsExactly(0, 5);
        assertThat(r.stats().truncated()).isEqualTo(1);
        assertThat(r.stats().truncatedTokens()).isEqualTo(3);
        assertThat(r.stats().toString()).contains("1 truncated (3 tokens cut)");
    }

    @Test
    void overlongExamplesCanBeSkipped() {
        SequencePacker packer = new SequencePacker(5, PAD, SequencePacker.Overlong.SKIP);
        SequencePacker.Result r = packer.pack(List.of(example(0, 8, 8), example(100, 2, 2)));
        assertThat(r.sequences()).hasSize(1);
        assertThat(r.sequences().get(0).inputIds()).startsWith(100, 101);
        assertThat(r.stats().skipped()).isEqualTo(1);
        assertThat(r.stats().truncated()).isZero();
    }

    @Test
    void aTruncatedExampleThatLosesItsAnswerIsDropped() {
        // the answer (trained part) is the last 2 of 9 tokens: cut to 5, nothing is left to learn
        SequencePacker.Result r = new SequencePacker(5).pack(List.of(example(0, 9, 2), example(100, 3, 1)));
        assertThat(r.stats().droppedWithoutLabels()).isEqualTo(1);
        assertThat(r.sequences()).hasSize(1);
        assertThat(r.sequences().get(0).documents()).isEqualTo(1);
    }

    @Test
    void streamingGivesTheSameSequences() {
        List<TokenizedExample> examples = IntStream.range(0, 20).mapToObj(i -> example(i * 100, 1 + i % 7, 1)).toList();
        SequencePacker.Result whole = new SequencePacker(16).pack(examples);
        SequencePacker packer = new SequencePacker(16);
        List<PackedSequence> streamed = new java.util.ArrayList<>();
        examples.forEach(e -> packer.add(e).ifPresent(streamed::add));
        packer.finish().ifPresent(streamed::add);
        assertThat(streamed).isEqualTo(whole.sequences());
        // every token of every example is in order, once
        int[] all = whole.sequences().stream()
                .flatMapToInt(p -> Arrays.stream(Arrays.copyOf(p.inputIds(), p.cuSeqlens()[p.documents()])))
                .toArray();
        assertThat(all).containsExactly(examples.stream().flatMapToInt(e -> Arrays.stream(e.inputIds())).toArray());
        for (PackedSequence p : whole.sequences()) {
            assertThat(p.length()).isEqualTo(16);
            assertThat(p.cuSeqlens()[p.cuSeqlens().length - 1]).isEqualTo(16);
        }
    }

    @Test
    void badArgumentsAreRefused() {
        assertThatThrownBy(() -> new SequencePacker(0)).hasMessageContaining("must be positive");
        assertThatThrownBy(() -> new PackedSequence(new int[3], new int[3], new int[3], new int[] {0, 2}, 1))
                .hasMessageContaining("cuSeqlens must run from 0 to 3");
        assertThatThrownBy(() -> new TokenizedExample(new int[3], new int[2])).hasMessageContaining("labels has 2");
    }

    /** Synthetic LongCite examples through the real tokenizer and the packer: every document comes back whole. */
    @Test
    void syntheticChatsPackAndComeBack() {
        LlamaTokenizer t = RealTokenizer.llama31OrSkip();
        org.junit.jupiter.api.Assumptions.assumeFalse(SyntheticLongCite.defaultSources().isEmpty());
        List<SyntheticExample> set = SyntheticLongCite.builder().seed(3).examples(6).tokens(2048, 8192).counter(t)
                .build().generate();
        ChatFormat format = new ChatFormat(t);
        SequencePacker.Result r = new SequencePacker(16384).pack(set.stream().map(e -> format.encode(e.messages())).toList());
        assertThat(r.stats().packed()).isEqualTo(6);
        assertThat(r.stats().truncated()).isZero();
        int k = 0;
        for (PackedSequence p : r.sequences()) {
            int[] targets = p.targets();
            for (int d = 0; d < p.documents(); d++, k++) {
                int from = p.cuSeqlens()[d];
                int to = p.cuSeqlens()[d + 1];
                assertThat(t.decode(Arrays.copyOfRange(p.inputIds(), from, to)))
                        .isEqualTo(ChatFormat.render(set.get(k).messages()));
                assertThat(p.positions()[from]).isZero();
                assertThat(p.positions()[to - 1]).isEqualTo(to - from - 1);
                int[] trained = Arrays.stream(Arrays.copyOfRange(targets, from, to))
                        .filter(id -> id != Tokenizer.IGNORE_INDEX).toArray();
                assertThat(t.decode(trained)).isEqualTo(set.get(k).answer() + SpecialTokens.END_OF_TURN);
            }
        }
        assertThat(k).isEqualTo(6);
    }
}
