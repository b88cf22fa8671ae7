#!/usr/bin/env bash
# GPU benchmark: longtune's CUDA engine and the PyTorch peer on the same GPU in one call, then one table.
#
# Run on the GPU machine from the repo root (.gpu-bundle/ holds the JRE and the jars for the Java side):
#   bash bench/gpu-bench.sh [--torch-only] [--quick] [GpuBench args...]
# Writes to $OUT (default: results/gpu-bench-<date>/): longtune.json, torch.json, merged.json, table.md and
# one log per step (longtune.log, torch.log, merge.log). A failed step does not stop the next; the script
# exits non-zero at the end if any step failed. --quick is passed to both sides (smallest size of each op);
# any other argument goes to GpuBench.
set -u
cd "$(dirname "$0")/.."

TORCH_ONLY=0
QUICK=()
JAVA_ARGS=()
for a in "$@"; do
  case "$a" in
    --torch-only) TORCH_ONLY=1 ;;
    --quick) QUICK=(--quick); JAVA_ARGS+=("$a") ;;
    *) JAVA_ARGS+=("$a") ;;
  esac
done

OUT="${OUT:-results/gpu-bench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
. bench/lib.sh   # step, bundle_runtime

GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
{ echo "gpu: ${GPU:-unknown}"; nvidia-smi --query-gpu=driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.used --format=csv 2>/dev/null; } | tee "$OUT/env.log"

run_java() {
  bundle_runtime .gpu-bundle /tmp/longtune-bundle || return 1
  "$BUNDLE_JAVA" -Xmx${JAVA_HEAP:-64g} -cp ".gpu-bundle/lib/*" dev.longtune.bench.GpuBench --out "$OUT/longtune.json" "$@"
}

if [ $TORCH_ONLY -eq 0 ]; then
  step longtune "$OUT/longtune.log" run_java "${JAVA_ARGS[@]}"
else
  echo "=== longtune: skipped (--torch-only)"
fi

step torch "$OUT/torch.log" python3 bench/peers/torch_peer.py --out "$OUT/torch.json" "${QUICK[@]}"

step merge "$OUT/merge.log" python3 bench/merge_results.py "$OUT/longtune.json" "$OUT/torch.json" \
  --out "$OUT/merged.json" --markdown "$OUT/table.md" --gpu "${GPU:-unknown}"

[ -f "$OUT/table.md" ] && cat "$OUT/table.md"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "gpu-bench: failed: ${FAILED[*]}"
  exit 1
fi
echo "gpu-bench: all steps passed -> $OUT"
