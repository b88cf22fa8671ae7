#!/usr/bin/env bash
# CPU AdamW (issue 10): longtune's native AdamW and the host's memory bandwidth (dev.longtune.bench.CpuAdamWBench,
# one process), then PyTorch's CPU AdamW (bench/peers/torch_cpu_adamw.py: foreach=True and fused=True) on the
# same parameters with the same thread count, then one JSON with the ratios.
#
# Run from the repository root, on the GPU machine (no Java there: .gpu-bundle/ carries a JRE and the jars) or
# anywhere with Java 17 and a built toolkit:
#   bash bench/cpu-adamw-bench.sh [--params 1.5e9] [--tensor 58720256] [--iterations 5] [--warmup 2] [--quick]
# Writes to $OUT (default results/cpu-adamw-<date>/): native.json, torch.json, cpu-adamw.json (merged: ratios
# torch / ours in seconds per step, ours as a fraction of the triad bandwidth), and a log per step.
# THREADS (default: nproc) sets OMP_NUM_THREADS for both sides and torch.set_num_threads.
# --quick: 50M parameters, 1 warm-up, 3 iterations, a 256 MiB triad (a smoke test, not a figure).
set -u
cd "$(dirname "$0")/.."

PARAMS=1.5e9
TENSOR=58720256          # 4096 x 14336, Llama 3.1 8B's MLP matrix
WARMUP=2
ITERATIONS=5
TRIAD_MIB=2048
while [ $# -gt 0 ]; do
  case "$1" in
    --params) PARAMS="$2"; shift ;;
    --tensor) TENSOR="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --iterations) ITERATIONS="$2"; shift ;;
    --quick) PARAMS=5e7; WARMUP=1; ITERATIONS=3; TRIAD_MIB=256 ;;
    *) echo "unknown argument $1 (use --params N --tensor N --warmup K --iterations K --quick)" >&2; exit 2 ;;
  esac
  shift
done

OUT="${OUT:-results/cpu-adamw-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
export THREADS="${THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$THREADS"
export PYTHONUNBUFFERED=1
. bench/lib.sh   # step, bundle_runtime

{ echo "threads: $THREADS (nproc $(nproc))"; lscpu 2>/dev/null | grep -E 'Model name|Socket|Core|Thread|NUMA|L3' ; \
  grep MemTotal /proc/meminfo; } | tee "$OUT/env.log"

# Java: the bundle's JRE and jars on the GPU machine, else the local java and toolkit/target
if [ -f .gpu-bundle/jre.tar.gz ] && ! command -v java >/dev/null; then
  bundle_runtime .gpu-bundle /tmp/longtune-bundle || exit 1
  JAVA=$BUNDLE_JAVA
  CP=".gpu-bundle/lib/*"
else
  JAVA="${JAVA:-java}"
  CP="$(ls toolkit/target/longtune-toolkit-*.jar | grep -v sources | head -1):toolkit/target/lib/*"
fi

# the kernels link libgomp.so.1; a machine with PyTorch from pip but no system libgomp gets torch's copy
if ! ldconfig -p 2>/dev/null | grep -q 'libgomp.so.1 '; then
  gomp=$(python3 -c 'import torch, glob, os; print((glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*.so*")) + [""])[0])' 2>/dev/null)
  if [ -n "$gomp" ]; then
    gdir="$(cd "$OUT" && pwd)/gomp"
    mkdir -p "$gdir" && ln -sf "$gomp" "$gdir/libgomp.so.1"
    export LD_LIBRARY_PATH="$gdir:${LD_LIBRARY_PATH:-}"
    echo "libgomp.so.1: not installed, using torch's $gomp" | tee -a "$OUT/env.log"
  fi
fi

# off-heap buffers are not Java heap: lift JavaCPP's default cap (the heap size) on them
step native "$OUT/native.log" "$JAVA" -Xmx4g -Dorg.bytedeco.javacpp.maxBytes=0 -Dorg.bytedeco.javacpp.maxPhysicalBytes=0 \
  -cp "$CP" dev.longtune.bench.CpuAdamWBench --params "$PARAMS" --tensor "$TENSOR" --warmup "$WARMUP" \
  --iterations "$ITERATIONS" --triad-mib "$TRIAD_MIB" --all-levels --out "$OUT/native.json"

if python3 -c 'import torch' 2>/dev/null; then
  step torch "$OUT/torch.log" python3 bench/peers/torch_cpu_adamw.py --params "$PARAMS" --tensor "$TENSOR" \
    --threads "$THREADS" --warmup "$WARMUP" --iterations "$ITERATIONS" --out "$OUT/torch.json"
else
  echo "=== torch: not installed here, no peer in this run" | tee "$OUT/torch.log"
fi

merge() {
python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
native = json.load(open(os.path.join(out, "native.json")))
torch_path = os.path.join(out, "torch.json")
peer = json.load(open(torch_path)) if os.path.exists(torch_path) else None
loaded = native["host"]["simd_level"]
ours = {(r["simd_level"], r["output_16bit"]): r for r in native["adamw"]}
main = ours[(loaded, "bf16")]
merged = {"host": native["host"], "check": native["check"], "params": native["params"], "tensor": native["tensor"],
          "tensors": native["tensors"], "triad": native["triad"], "ours": native["adamw"],
          "unscale_sum_squares": native["unscale_sum_squares"], "peer": peer, "summary": {}}
s = merged["summary"]
s["ours"] = {"simd_level": loaded, "median_s": main["median_s"], "params_per_s": main["params_per_s"],
             "gb_per_s": main["gb_per_s"], "bytes_per_param": main["bytes_per_param"],
             "fraction_of_triad_median": main["fraction_of_triad"],
             "targets": "ratio_to_foreach >= 3, fraction_of_triad >= 0.70 (issue 10)"}
s["triad_median_gb_per_s"] = native["triad"]["median_gb_per_s"]
s["triad_best_gb_per_s"] = native["triad"]["best_gb_per_s"]
if peer:
    for r in peer["rows"]:
        if "median_s" in r:
            s["ratio_to_" + r["impl"]] = r["median_s"] / main["median_s"]
            s[r["impl"] + "_gb_per_s"] = r["gb_per_s"]
            s[r["impl"] + "_params_per_s"] = r["params_per_s"]
        else:
            s["ratio_to_" + r["impl"]] = None
            s[r["impl"] + "_error"] = r.get("error")
json.dump(merged, open(os.path.join(out, "cpu-adamw.json"), "w"), indent=2)
print(json.dumps(s, indent=2))
EOF
}
step merge "$OUT/merge.log" merge

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "cpu-adamw-bench: failed: ${FAILED[*]}"
  exit 1
fi
echo "cpu-adamw-bench: all steps passed -> $OUT"
