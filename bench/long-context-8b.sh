#!/usr/bin/env bash
# The whole Llama 3.1 8B (random init) at long context on one GPU under a memory cap, with the MLP in sequence tiles
# and everything offloaded (parameters, AdamW, checkpoints), through the command line. Runs from the GPU bundle
# (bench/gpu-bundle.sh) on the 2-GPU machine (the 8B's offloaded state needs its host memory).
#
#   bash bench/long-context-8b.sh CONTEXT CAP [TILE] [STEPS]     e.g. bash bench/long-context-8b.sh 131072 16GiB 8192 1
#   bash bench/long-context-8b.sh --measure CAP FROM TO RESOLUTION [TILE]
#                                  bisect real steps for the longest context that trains (max-context --measure)
#
# Writes long-<cap>-<context>.jsonl (one JSON line per step: loss, tokens/s, GPU and host peaks by category) or
# max-context-<cap>.json, their .err (progress), and host-*.txt (host memory and GPU memory every 5 s) under $OUT.
# Extra train options: $LONGTUNE_TRAIN_ARGS (e.g. --keep-attention).
# Data: $LONGTUNE_DATA (default synthetic-longcite; random-document makes each sequence one full-length document).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$root/.gpu-bundle
out=${OUT:-$root/long-context-8b}
mkdir -p "$out"
. "$root/bench/lib.sh"
bundle_runtime "$bundle" /tmp/longtune-bundle
java=("$BUNDLE_JAVA" -Xmx"${LONGTUNE_HEAP:-200g}" -Djava.awt.headless=true -cp "$bundle/lib/*" dev.longtune.cli.LongtuneCommand)
if [ "${1:-}" = --measure ]; then
  cap=${2:?cap}; from=${3:?from}; to=${4:?to}; res=${5:?resolution}; tile=${6:-8192}
  tag=max-context-$cap
  cmd=(max-context --measure --device cuda --model llama-3.1-8b --gpu-memory-cap "$cap" --precision bf16 --tile "$tile"
       --from "$from" --to "$to" --resolution "$res" --json)
  file=$out/$tag.json
else
  context=${1:?context}; cap=${2:?cap}; tile=${3:-8192}; steps=${4:-1}
  tag=long-$cap-$context
  cmd=(train --progress on --model llama-3.1-8b --device cuda --offload parameters,optimizer,checkpoints --gpu-memory-cap "$cap"
       --context "$context" --tile "$tile" --steps "$steps" --examples 2 --data "${LONGTUNE_DATA:-synthetic-longcite}" ${LONGTUNE_TRAIN_ARGS:-} --precision bf16 --json)
  file=$out/$tag.jsonl
fi
( while sleep 5; do date +%T; grep -E 'MemAvailable|Committed_AS' /proc/meminfo; nvidia-smi --query-gpu=memory.used --format=csv,noheader; done ) \
  > "$out/host-$tag.txt" 2>&1 &
monitor=$!
set +e
"${java[@]}" "${cmd[@]}" > "$file" 2> "$out/$tag.err"
rc=$?
kill $monitor
tail -n 5 "$out/$tag.err"
cat "$file"
exit $rc
