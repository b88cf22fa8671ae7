#!/usr/bin/env bash
# Packs the GPU path for a machine with CUDA but no Java or Maven, within the device tool's 64 MiB:
# ../shared/tools/gpu-bundle.sh (a jlink'd JRE and the runtime jars), minus jars the GPU path never loads
# (CPU natives, tables and charts, the notebook kernel), plus the test classes, JUnit's console launcher and
# AssertJ for the GPU tests. Run from the repository root after `mvn -q -DskipTests install`.
# On the GPU machine (see docs/benchmarks.md, "Running on a GPU"):
#   tar xzf .gpu-bundle/jre.tar.gz -C /tmp && export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH
#   /tmp/jre/bin/java -cp ".gpu-bundle/lib/*" dev.longtune.bench.GpuBench --out longtune.json
#   /tmp/jre/bin/java -jar .gpu-bundle/test/junit-platform-console-standalone.jar \
#     -cp ".gpu-bundle/lib/*:.gpu-bundle/test/classes:.gpu-bundle/test/assertj-core.jar" \
#     -Dlongtune.test.devices=cuda --select-package dev.longtune.cuda --select-class ...
set -euo pipefail
root=$(git rev-parse --show-toplevel)
GPU_BUNDLE_LIMIT_MIB=1000 "$root/../shared/tools/gpu-bundle.sh" toolkit >/dev/null
lib=$root/.gpu-bundle/lib
for j in fastutil icu4j nd4j- protobuf jackson-1.0.0 guava- flatbuffers oshi jna jeromq jupyter-jvm tablesaw \
         RoaringBitmap univocity xchart VectorGraphics2D commons-math3 api-0 classgraph threetenbp neoitertools \
         gson byteunits commons-net commons-collections4 commons-compress checker-qual error_prone j2objc \
         failureaccess listenablefuture jsr305; do
  rm -f "$lib"/$j*.jar
done
out=$root/.gpu-bundle/test
mkdir -p "$out"
cp -r "$root/toolkit/target/test-classes" "$out/classes"
version() { MAVEN_OPTS= mvn -B -q -Dstyle.color=never help:evaluate -Dexpression="$1" -DforceStdout -f "$root/pom.xml" | sed "s/\x1b\[[0-9;]*m//g"; }
mvn -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:"$(version junit.platform.version)" \
  -DoutputDirectory="$out" -Dmdep.stripVersion=true
mvn -q dependency:copy -Dartifact=org.assertj:assertj-core:"$(version assertj.version)" -DoutputDirectory="$out" \
  -Dmdep.stripVersion=true
size=$(du -sm "$root/.gpu-bundle" | cut -f1)
echo "bundle: $root/.gpu-bundle ($size MiB)"
[ "$size" -le 60 ] || { echo "bundle over 60 MiB" >&2; exit 1; }
