import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.model.Batch;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.train.DataParallel;
import dev.longtune.train.TrainingConfig;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Writes what bench/hf-load/check.py loads with Hugging Face transformers: a small Llama trained two steps by two CPU
 * ranks (ZeRO-3 shards on the host, FP32) and saved sharded, rank by rank, into one folder (tied and untied
 * embeddings), with the mean loss longtune computes on a held-out sequence after the save (expected.json).
 *
 *   mvn -q -DskipTests install
 *   mvn -q -pl toolkit dependency:build-classpath -Dmdep.outputFile=/tmp/cp.txt
 *   java -cp toolkit/target/classes:$(cat /tmp/cp.txt) bench/hf-load/ShardedSave.java OUT_DIR
 */
public class ShardedSave {
    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        StringBuilder expected = new StringBuilder("{");
        for (boolean tied : new boolean[] {false, true}) {
            String json = """
                    {"model_type": "llama", "hidden_size": 64, "intermediate_size": 112, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 301, "rope_theta": 500000.0,
                     "rms_norm_eps": 1e-5, "tie_word_embeddings": %s}""".formatted(tied);
            ModelConfig config = ModelConfig.parse("tiny", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "hf-load");
            TrainingConfig tc = TrainingConfig.defaults(4).withLearningRate(5e-3, 5e-4).withGradientAccumulation(1);
            DataParallel.Job job = new DataParallel.Job(config, Precision.FP32, Checkpointing.DEVICE, ParameterPlacement.HOST, tc, 11);
            Random r = new Random(5);
            int[] heldOut = r.ints(97, 0, 301).toArray();
            String name = tied ? "tied" : "untied";
            try (DataParallel dp = DataParallel.onCpu(job, 2)) {
                for (int s = 0; s < 2; s++) {
                    List<Batch> step = new ArrayList<>();
                    for (int k = 0; k < 2; k++) {
                        step.add(Batch.ofDocument(r.ints(61, 0, 301).toArray()));
                    }
                    dp.step(step);
                }
                dp.save(out.resolve(name));
                double loss = dp.meanLoss(List.of(Batch.ofDocument(heldOut)));
                expected.append(expected.length() > 1 ? ", " : "").append('"').append(name).append("\": {\"loss\": ")
                        .append(loss).append(", \"ids\": ").append(java.util.Arrays.toString(heldOut)).append('}');
            }
        }
        Files.writeString(out.resolve("expected.json"), expected.append("}\n").toString());
        System.out.println("wrote " + out);
    }
}
