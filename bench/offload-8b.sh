#!/usr/bin/env bash
# The whole Llama 3.1 8B (random init) trained through the command line with parameters, optimizer and checkpoints
# offloaded to host memory, on one GPU under a memory cap, beside the planner's prediction for the same stack.
# Runs from the GPU bundle (bench/gpu-bundle.sh) on a machine with CUDA but no Java; needs about 200 GB of host
# memory (FP32 master weights and AdamW moments in the JVM heap, 16-bit weights and gradients pinned), so the
# 2-GPU machine.
#
#   bash bench/offload-8b.sh CONTEXT CAP [STEPS]      e.g. bash bench/offload-8b.sh 32768 16GiB 2
#
# Writes train-<context>.jsonl (one JSON line per step: loss, tokens/s, GPU and host peaks by category, the
# allocator's figures), train-<context>.err (progress), plan-<context>.json and host-<context>.txt under $OUT.
# Extra train options: $LONGTUNE_TRAIN_ARGS (e.g. --keep-attention --resident-layers 8); the same for the plan:
# $LONGTUNE_PLAN_ARGS (e.g. --keep-attention --resident-layers 8).
# Data: $LONGTUNE_DATA (default random-document; one random full-length document per sequence, the work of the PyTorch peers' full-length sequences (before 2026-11-30 these runs trained synthetic-longcite, which packs shorter documents and padding: less attention work)).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$root/.gpu-bundle
context=${1:?context in tokens}; cap=${2:?GPU memory cap, e.g. 16GiB}; steps=${3:-2}
out=${OUT:-$root/offload-8b}
mkdir -p "$out"
. "$root/bench/lib.sh"
bundle_runtime "$bundle" /tmp/longtune-bundle
java=("$BUNDLE_JAVA" -Xmx"${LONGTUNE_HEAP:-200g}" -Djava.awt.headless=true -cp "$bundle/lib/*" dev.longtune.cli.LongtuneCommand)

"${java[@]}" plan --model llama-3.1-8b --node 1xH200 --context "$context" --profile longtune --stack zero-offload \
  --checkpointing offload --attention fa2 --liger all --precision bf16 --host-ram "${LONGTUNE_HOST_RAM:-256GiB}" ${LONGTUNE_PLAN_ARGS:-} \
  --json > "$out/plan-$context.json" || true   # exit 3 when the plan does not fit; the figures are what we want
( lscpu | grep -E "^(Model name|Socket|NUMA|CPU\(s\))" || true; nvidia-smi topo -m 2>/dev/null || true  # the host's sockets and NUMA nodes, the GPUs' affinity
  while sleep 5; do date +%T; grep -E 'MemAvailable|Committed_AS' /proc/meminfo; nvidia-smi --query-gpu=memory.used --format=csv,noheader -i 0; done ) \
  > "$out/host-$context.txt" 2>&1 &
monitor=$!
set +e
"${java[@]}" train --model llama-3.1-8b --device cuda --offload parameters,optimizer,checkpoints --gpu-memory-cap "$cap" \
  --context "$context" --steps "$steps" --examples 2 --data "${LONGTUNE_DATA:-random-document}" ${LONGTUNE_TRAIN_ARGS:-} --precision bf16 --host-ram "${LONGTUNE_HOST_RAM:-256GiB}" --json --progress on \
  > "$out/train-$context.jsonl" 2> "$out/train-$context.err"
rc=$?
kill $monitor
tail -n 5 "$out/train-$context.err"
cat "$out/train-$context.jsonl"
exit $rc
