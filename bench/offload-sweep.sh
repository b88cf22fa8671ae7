#!/usr/bin/env bash
# The whole model's measured GPU memory against context under a cap, beside the planner's curve, with parameters,
# AdamW and layer inputs offloaded (dev.longtune.bench.OffloadSweep): one model for every context, two steps each.
# Runs from the GPU bundle (bench/gpu-bundle.sh) on a machine with CUDA but no Java; the 8B needs about 150 GB of
# host memory, so the 2-GPU machine.
#
#   bash bench/offload-sweep.sh [CAP] [CONTEXTS] [MODEL]   defaults: 48GiB 8192,16384,32768,65536,131072 llama-3.1-8b
#
# Writes offload-sweep.json (rewritten after every context; OffloadSweepReport makes the CSV and PNG), offload-sweep.err (progress) and
# host-sweep.txt (host memory and GPU use every 5 s) under $OUT.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$root/.gpu-bundle
cap=${1:-48GiB}; contexts=${2:-8192,16384,32768,65536,131072}; model=${3:-llama-3.1-8b}
out=${OUT:-$root/offload-sweep}
mkdir -p "$out"
. "$root/bench/lib.sh"
bundle_runtime "$bundle" /tmp/longtune-bundle
( while sleep 5; do date +%T; grep -E 'MemAvailable|Committed_AS' /proc/meminfo; nvidia-smi --query-gpu=memory.used --format=csv,noheader -i 0; done ) \
  > "$out/host-sweep.txt" 2>&1 &
monitor=$!
set +e
"$BUNDLE_JAVA" -Xmx"${LONGTUNE_HEAP:-200g}" -Djava.awt.headless=true -cp "$bundle/lib/*" dev.longtune.bench.OffloadSweep \
  "$model" "$cap" "$contexts" "$out" 2> "$out/offload-sweep.err"
rc=$?
kill $monitor
cat "$out/offload-sweep.err"
exit $rc
