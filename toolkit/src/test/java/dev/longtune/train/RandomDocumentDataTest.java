package dev.longtune.train;

import dev.longtune.data.Tokenizer;
import dev.longtune.model.Batch;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@code --data random-document}: one full-length document per sequence, every position but the last trained. */
class RandomDocumentDataTest {
    @Test
    void eachSequenceIsOneFullDocumentOfIdsBelowTheVocabulary() {
        List<TrainingData> split = TrainingData.split(TrainingData.RANDOM_DOCUMENT, null, 50, 37, 3, 2, 9);
        assertThat(split).hasSize(2);
        assertThat(split.get(0).batches()).hasSize(3);
        assertThat(split.get(1).batches()).hasSize(2);
        for (TrainingData d : split) {
            for (Batch b : d.batches()) {
                assertThat(b.cuSeqlens()).containsExactly(0, 37);
                assertThat(java.util.Arrays.stream(b.ids()).allMatch(id -> id >= 0 && id < 50)).isTrue();
                for (int i = 0; i < 36; i++) {
                    assertThat(b.targets()[i]).isEqualTo(b.ids()[i + 1]);
                }
                assertThat(b.targets()[36]).isEqualTo(Tokenizer.IGNORE_INDEX);
            }
            assertThat(d.stats().padding()).isZero();
            assertThat(d.questions()).isEmpty();
        }
        // the held-out documents are not training ones; the same seed gives the same data, another seed other data
        assertThat(split.get(1).batches().get(0).ids()).isNotEqualTo(split.get(0).batches().get(0).ids());
        assertThat(TrainingData.split(TrainingData.RANDOM_DOCUMENT, null, 50, 37, 3, 2, 9).get(0).batches().get(2).ids())
                .isEqualTo(split.get(0).batches().get(2).ids());
        assertThat(TrainingData.split(TrainingData.RANDOM_DOCUMENT, null, 50, 37, 3, 0, 10)).hasSize(1)
                .first().satisfies(d -> assertThat(d.batches().get(0).ids()).isNotEqualTo(split.get(0).batches().get(0).ids()));
        // a step's MFU counts the whole document: the per-token formula at the context length
        assertThat(Mfu.stepFlops(dev.longtune.config.ModelCatalog.get("llama-3.1-8b"), split.get(0).batches().subList(0, 1)))
                .isEqualTo(37 * Mfu.flopsPerToken(dev.longtune.config.ModelCatalog.get("llama-3.1-8b"), 37));
    }

    @Test
    void noExamplesIsAnError() {
        assertThatThrownBy(() -> TrainingData.split(TrainingData.RANDOM_DOCUMENT, null, 50, 37, 0, 0, 9))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("random documents");
    }
}
