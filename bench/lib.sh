# Sourced by the bench scripts (bash): the step runner and the GPU bundle's runtime, written once.

FAILED=()

step() {  # step NAME LOG cmd...: runs cmd, output to the terminal and LOG; records a failure in FAILED
  local name="$1" log="$2"; shift 2
  echo "=== $name: $*" | tee "$log"
  local t0=$SECONDS
  set -o pipefail
  "$@" 2>&1 | tee -a "$log"
  local rc=$?
  set +o pipefail
  echo "=== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$log"
  [ $rc -eq 0 ] || FAILED+=("$name (exit $rc)")
}

# bundle_runtime BUNDLE WORK: unpacks the bundle's JRE (and the Llama 3.1 tokenizer, where the bundle has it) into
# WORK once, exports LONGTUNE_TOKENIZER and puts the CUDA libraries on LD_LIBRARY_PATH; BUNDLE_JAVA is the java to run.
bundle_runtime() {
  local bundle="$1" work="$2"
  [ -f "$bundle/jre.tar.gz" ] || { echo "no GPU bundle at $bundle: run 'mvn -q -DskipTests install && bash bench/gpu-bundle.sh' first" >&2; return 2; }
  mkdir -p "$work"
  [ -x "$work/jre/bin/java" ] || tar xzf "$bundle/jre.tar.gz" -C "$work" || return 1
  if [ -f "$bundle/tokenizer/tokenizer.json.gz" ]; then
    [ -s "$work/tokenizer.json" ] || gunzip -c "$bundle/tokenizer/tokenizer.json.gz" > "$work/tokenizer.json" || return 1
    export LONGTUNE_TOKENIZER=$work/tokenizer.json
  fi
  case ":${LD_LIBRARY_PATH:-}:" in
    *:/usr/local/cuda/lib64:*) ;;
    *) export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ;;
  esac
  # NCCL (data parallelism) from PyTorch's wheel, where the machine has one
  local nccl
  nccl=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
  if [ -n "$nccl" ] && [ -f "$nccl/libnccl.so.2" ]; then
    export LD_LIBRARY_PATH=$nccl:$LD_LIBRARY_PATH
  fi
  BUNDLE_JAVA=$work/jre/bin/java
}
