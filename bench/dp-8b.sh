#!/usr/bin/env bash
# The whole Llama 3.1 8B (random init) trained with ZeRO-3 data parallelism over the GPUs of one machine, through
# the command line (train --gpus N): every rank's shards of the weights and gradients, its AdamW state and its
# checkpoints in host memory, each GPU capped. Runs from the GPU bundle (bench/gpu-bundle.sh) on the 2-GPU machine.
#
#   bash bench/dp-8b.sh CONTEXT CAP [STEPS] [GPUS]      e.g. bash bench/dp-8b.sh 32768 48GiB 3 2
#
# Writes dp-<gpus>x<context>.jsonl (one JSON line per step: loss, tokens/s over all GPUs, each rank's GPU and host
# peaks by category) and .err, and host-<gpus>x<context>.txt (host memory and GPU memory every 5 s) under $OUT.
# NCCL's own variables pass through (e.g. NCCL_MAX_CTAS=4 to leave the compute kernels more SMs; NCCL_NVLS_ENABLE is
# set to 0 here). Extra train options: $LONGTUNE_TRAIN_ARGS (e.g. --keep-attention, or --kernels-as v100 to choose kernels as a V100
# would); precision: $LONGTUNE_PRECISION (default bf16; fp16 as a V100 trains, with dynamic loss scaling).
# Data: $LONGTUNE_DATA (default random-document; one random full-length document per sequence, the work of the PyTorch peers' full-length sequences (before 2026-11-30 these runs trained synthetic-longcite, which packs shorter documents and padding: less attention work)).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$root/.gpu-bundle
context=${1:?context in tokens per GPU}; cap=${2:?GPU memory cap, e.g. 48GiB}; steps=${3:-3}; gpus=${4:-2}
out=${OUT:-$root/dp-8b}
mkdir -p "$out"
. "$root/bench/lib.sh"
bundle_runtime "$bundle" /tmp/longtune-bundle
export NCCL_NVLS_ENABLE=0
java=("$BUNDLE_JAVA" -Xmx"${LONGTUNE_HEAP:-200g}" -Djava.awt.headless=true -cp "$bundle/lib/*" dev.longtune.cli.LongtuneCommand)
tag=${gpus}x$context
( lscpu | grep -E "^(Model name|Socket|NUMA|CPU\(s\))" || true; nvidia-smi topo -m 2>/dev/null || true  # the host's sockets and NUMA nodes, the GPUs' affinity
  while sleep 5; do date +%T; grep -E 'MemAvailable|Committed_AS' /proc/meminfo; nvidia-smi --query-gpu=memory.used --format=csv,noheader; done ) \
  > "$out/host-$tag.txt" 2>&1 &
monitor=$!
set +e
"${java[@]}" train --progress on --model llama-3.1-8b --device cuda --gpus "$gpus" --offload parameters,optimizer,checkpoints \
  --gpu-memory-cap "$cap" --context "$context" --steps "$steps" --examples $((2 * gpus)) --data "${LONGTUNE_DATA:-random-document}" ${LONGTUNE_TRAIN_ARGS:-} --precision "${LONGTUNE_PRECISION:-bf16}" --json \
  > "$out/dp-$tag.jsonl" 2> "$out/dp-$tag.err"
rc=$?
kill $monitor
tail -n 5 "$out/dp-$tag.err"
cat "$out/dp-$tag.jsonl"
exit $rc
