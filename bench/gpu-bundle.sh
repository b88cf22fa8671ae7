#!/usr/bin/env bash
# Packs the GPU path for a machine with CUDA but no Java or Maven, within the device tool's 64 MiB:
# ../shared/tools/gpu-bundle.sh (a jlink'd JRE and the runtime jars), minus jars the GPU path never loads
# (CPU natives, tables and charts, the notebook kernel), plus the test classes, JUnit's console launcher,
# AssertJ, and the Llama 3.1 tokenizer that `train` on synthetic-longcite data needs (gzipped; from the cache
# environment/fetch-tokenizer.sh fills, fetched first where missing; the bundle is ignored by git, so the
# tokenizer is never committed). Run from the repository root after `mvn -q -DskipTests install`.
# On the GPU machine (README.md, "Running on a GPU"):
#   bash bench/gpu-test.sh                    # the whole GPU test set; JUnit report under $OUT
#   bash bench/gpu-bench.sh; bash bench/offload-8b.sh 32768 16GiB 2; bash bench/cpu-adamw-bench.sh
# (each unpacks the bundle's JRE and tokenizer through bench/lib.sh)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
GPU_BUNDLE_LIMIT_MIB=1000 "$root/../shared/tools/gpu-bundle.sh" toolkit >/dev/null
lib=$root/.gpu-bundle/lib
for j in fastutil icu4j nd4j- protobuf jackson-1.0.0 guava- flatbuffers oshi jna jeromq jupyter-jvm tablesaw \
         RoaringBitmap univocity commons-math3 classgraph threetenbp neoitertools \
         byteunits commons-net commons-collections4 commons-compress checker-qual error_prone j2objc \
         failureaccess listenablefuture jsr305; do
  rm -f "$lib"/$j*.jar
done
# DJL's Hugging Face tokenizer (LlamaTokenizer; train reads its data through it), with its x86-64 Linux native
# library only (the jar carries five platforms' libraries, 56 MiB unpacked); DJL's api jar and gson stay above
tokenizers=$(ls "$root"/toolkit/target/lib/tokenizers-*.jar)
cp "$tokenizers" "$lib/"
zip -q -d "$lib/$(basename "$tokenizers")" 'native/lib/linux-aarch64/*' 'native/lib/osx-*' 'native/lib/win-*'
out=$root/.gpu-bundle/test
mkdir -p "$out"
cp -r "$root/toolkit/target/test-classes" "$out/classes"
version() { MAVEN_OPTS= mvn -B -q -Dstyle.color=never help:evaluate -Dexpression="$1" -DforceStdout -f "$root/pom.xml" | sed "s/\x1b\[[0-9;]*m//g"; }
mvn -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:"$(version junit.platform.version)" \
  -DoutputDirectory="$out" -Dmdep.stripVersion=true
mvn -q dependency:copy -Dartifact=org.assertj:assertj-core:"$(version assertj.version)" -DoutputDirectory="$out" \
  -Dmdep.stripVersion=true
# where TokenizerCache looks (LONGTUNE_TOKENIZER names the file or its folder)
tokenizer=${LONGTUNE_TOKENIZER:-${XDG_CACHE_HOME:-$HOME/.cache}/longtune/tokenizers/llama-3.1/tokenizer.json}
case $tokenizer in *.json) ;; *) tokenizer=$tokenizer/tokenizer.json ;; esac
if [ ! -f "$tokenizer" ]; then
  bash "$root/environment/fetch-tokenizer.sh" "$(dirname "$tokenizer")" >&2
fi
mkdir -p "$root/.gpu-bundle/tokenizer"
gzip -c "$tokenizer" > "$root/.gpu-bundle/tokenizer/tokenizer.json.gz"
size=$(du -sm "$root/.gpu-bundle" | cut -f1)
echo "bundle: $root/.gpu-bundle ($size MiB)"
[ "$size" -le 60 ] || { echo "bundle over 60 MiB" >&2; exit 1; }
