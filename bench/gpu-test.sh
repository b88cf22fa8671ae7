#!/usr/bin/env bash
# The whole GPU test set, on a machine with CUDA but no Java, from the bundle bench/gpu-bundle.sh packs:
#
#   bash bench/gpu-test.sh [REPORT_DIR]      REPORT_DIR defaults to $OUT where set (the device tool), else gpu-test-report
#   bash bench/gpu-test.sh --only CLASS[,CLASS] [REPORT_DIR]
#                                            only those test classes (simple names of the set below, e.g. DeviceParityTest)
#   bash bench/gpu-test.sh --whole-model [REPORT_DIR]
#                                            only WholeModelOffloadGpuTest: the whole 8B under a 16 GiB cap at 49,152
#                                            tokens (about 150 GB of host memory: the 2-GPU machine; 5 minutes)
#
# Unpacks the bundle's JRE and the Llama 3.1 tokenizer into /tmp, puts the CUDA libraries on LD_LIBRARY_PATH,
# and runs every GPU test class with -Dlongtune.test.devices=cuda (a missing GPU or tokenizer then fails a test
# instead of skipping it). Writes the JUnit XML report (TEST-junit-jupiter.xml) and the console log
# (gpu-test.log) under REPORT_DIR; exits non-zero when a test fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$root/.gpu-bundle
whole_model=false
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --whole-model) whole_model=true; shift ;;
    --only) only=${2:?--only needs class names, e.g. DeviceParityTest}; shift 2 ;;
    *) break ;;
  esac
done
reports=${1:-${OUT:-$root/gpu-test-report}}
[ -d "$bundle/test/classes" ] || {
  echo "gpu-test: no test bundle at $bundle: run 'mvn -q -DskipTests install && bash bench/gpu-bundle.sh' first" >&2; exit 2; }
mkdir -p "$reports"
. "$root/bench/lib.sh"
work=/tmp/longtune-gpu-test
rm -rf "$work"   # a fresh JRE and tokenizer for every test run
bundle_runtime "$bundle" "$work" || exit 2

classes=(
  dev.longtune.cuda.CudaDeviceTest          # AdamW and norm kernels, the memory cap, release on close, NVRTC errors
  dev.longtune.cuda.NcclAbortGpuTest        # a rank's NCCL communicator aborted from another thread: refusals, one destroy
  dev.longtune.cuda.KernelArchitectureTest  # every kernel for every architecture; the Volta path stays Volta
  dev.longtune.device.DeviceParityTest      # every op in FP32, BF16, FP16 against fp64; copies; forced WMMA attention
  dev.longtune.model.ModelOnDevicesTest     # the model: gradients, training in BF16/FP16, optimizer placements, generation
  dev.longtune.cli.GpuCommandLineTest       # inspect and train with --device cuda/auto, --gpu-memory-cap, save/resume, --init-from
  dev.longtune.model.ParameterOffloadGpuTest  # parameters offloaded to pinned host memory match resident training
  dev.longtune.model.SequenceTilingTest       # the MLP in sequence tiles trains as the untiled layer
  dev.longtune.model.DataParallelGpuTest      # ZeRO-3 over NCCL: 1 rank on any GPU, 2 ranks on the 2-GPU machine, against the unsharded engine
  dev.longtune.model.InterruptedStepTest      # an interrupted step gives back its memory; the next steps match an uninterrupted run
  dev.longtune.model.HostOverheadGpuTest      # no host wait inside a layer's forward or backward; kernels and GEMMs per layer
  dev.longtune.model.KeptAttentionTest        # --keep-attention: bit-identical to recomputed attention, host bytes exact
  dev.longtune.model.KeptLastLayerTest        # --keep-last-layer: bit-identical to recomputing the last layer, host bytes exact
  dev.longtune.report.MeasuredSweepGpuTest    # the study's measured sweep: the planner within 5% of the GPU's peaks
  dev.longtune.model.WholeModelOffloadGpuTest # skipped here (host memory): run with --whole-model on the 2-GPU machine
)
jvm=(-Dlongtune.test.devices=cuda)
if $whole_model; then
  classes=(dev.longtune.model.WholeModelOffloadGpuTest)
  jvm+=(-Dlongtune.test.wholeModel=true -Xmx200g)
fi
if [ -n "$only" ]; then
  chosen=()
  for name in ${only//,/ }; do
    match=""
    for c in "${classes[@]}"; do [ "${c##*.}" = "$name" ] && match=$c; done
    [ -n "$match" ] || { echo "gpu-test: --only $name: not one of ${classes[*]##*.}" >&2; exit 2; }
    chosen+=("$match")
  done
  classes=("${chosen[@]}")
fi
select=()
for c in "${classes[@]}"; do select+=(--select-class "$c"); done
cp=$(ls "$bundle"/lib/*.jar | tr '\n' ':')$bundle/test/classes:$bundle/test/assertj-core.jar
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true) | tee "$reports/gpu-test.log"
set -o pipefail
"$BUNDLE_JAVA" "${jvm[@]}" -Djava.awt.headless=true \
  -jar "$bundle/test/junit-platform-console-standalone.jar" execute --disable-banner --disable-ansi-colors --details=tree \
  -cp "$cp" "${select[@]}" --reports-dir "$reports" 2>&1 | tee -a "$reports/gpu-test.log"
