#!/usr/bin/env bash
# A 2-layer slice of Llama 3.1 8B (its embedding, head and two decoder layers: 1.5B parameters) trained through the
# command line twice in one call: everything on the GPU (AdamW there too), then with parameters, optimizer and
# checkpoints offloaded: what offloading costs on the same work. Runs from the GPU bundle (bench/gpu-bundle.sh).
#
#   bash bench/offload-slice.sh [CONTEXT] [STEPS]     defaults: 32768 4
#
# Writes slice-resident.jsonl and slice-offloaded.jsonl (one JSON line per step: tokens/s, busy time, wall/busy,
# peaks by category) under $OUT.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$root/.gpu-bundle
context=${1:-32768}; steps=${2:-4}
out=${OUT:-$root/offload-slice}
mkdir -p "$out"
. "$root/bench/lib.sh"
bundle_runtime "$bundle" /tmp/longtune-bundle
config=$(mktemp -d)/config.json
cat > "$config" <<'JSON'
{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 2,
 "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "rms_norm_eps": 1e-05,
 "rope_theta": 500000.0, "max_position_embeddings": 131072, "tie_word_embeddings": false,
 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}}
JSON
java=("$BUNDLE_JAVA" -Xmx"${LONGTUNE_HEAP:-64g}" -Djava.awt.headless=true -cp "$bundle/lib/*" dev.longtune.cli.LongtuneCommand)
common=(train --model "$config" --device cuda --context "$context" --steps "$steps" --examples 2 --precision bf16 --json)
"${java[@]}" "${common[@]}" --optimizer device > "$out/slice-resident.jsonl"
"${java[@]}" "${common[@]}" --offload parameters,optimizer,checkpoints > "$out/slice-offloaded.jsonl"
for f in resident offloaded; do
  echo "$f:"; grep -o '"step":[0-9]*\|"tokens_per_s":[0-9.]*\|"busy_s":[0-9.]*\|"wall_over_busy":[0-9.]*' "$out/slice-$f.jsonl" | paste - - - -
done
