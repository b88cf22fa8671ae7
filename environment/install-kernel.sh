#!/usr/bin/env bash
# Registers the longtune Java kernel with Jupyter: kernelspec "longtune", shown as "Java (longtune)".
# Idempotent and offline. The kernel must be built first (mvn -q -B -DskipTests install).
#
#   environment/install-kernel.sh [DATA_DIR]
#
# DATA_DIR   a Jupyter data directory; the kernelspec goes to DATA_DIR/kernels/longtune.
#            Default: the user's, from `/usr/bin/jupyter --data-dir`.
# LONGTUNE_KERNEL_CLASSPATH  the kernel's class path instead of the built jar + target/lib/* (tests).
# LONGTUNE_KERNEL_JAVA       the java command the kernelspec runs (default: java, found on PATH).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/jupyter-kernel"
say() { printf 'install-kernel: %s\n' "$*"; }
die() { printf 'install-kernel: error: %s\n' "$*" >&2; exit 1; }

[ $# -le 1 ] || die "usage: $0 [JUPYTER_DATA_DIR]"

data_dir=${1:-}
if [ -z "$data_dir" ]; then
  if [ -x /usr/bin/jupyter ]; then
    data_dir=$(/usr/bin/jupyter --data-dir)
  else
    # Jupyter's own default on Linux, so the kernel is there once Jupyter is installed.
    data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/jupyter"
    say "no /usr/bin/jupyter yet; using Jupyter's default data dir $data_dir"
  fi
fi

classpath=${LONGTUNE_KERNEL_CLASSPATH:-}
if [ -z "$classpath" ]; then
  jar=$(ls "$module"/target/longtune-jupyter-kernel-*.jar 2>/dev/null \
        | grep -v -e '-sources\.jar$' -e '-javadoc\.jar$' -e '-tests\.jar$' | head -n 1 || true)
  [ -n "$jar" ] && [ -d "$module/target/lib" ] \
    || die "the kernel is not built: run 'mvn -q -B -DskipTests install' in $(dirname "$here")"
  classpath="$jar:$module/target/lib/*"
fi
java_cmd=${LONGTUNE_KERNEL_JAVA:-java}
command -v "$java_cmd" >/dev/null || say "warning: '$java_cmd' is not on PATH; the kernel will not start without it"

json() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

dest="$data_dir/kernels/longtune"
mkdir -p "$dest"
tmp=$(mktemp "$dest/.kernel.json.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp" <<JSON
{
  "display_name": "Java (longtune)",
  "language": "java",
  "interrupt_mode": "message",
  "argv": [
    $(json "$java_cmd"),
    "-Djava.awt.headless=true",
    "-cp",
    $(json "$classpath"),
    "dev.longtune.kernel.KernelMain",
    "{connection_file}"
  ]
}
JSON
# the logo Jupyter shows for the kernel (launcher, notebook header)
for logo in logo-32x32.png logo-64x64.png; do
  cmp -s "$here/kernelspec/$logo" "$dest/$logo" 2>/dev/null || cp "$here/kernelspec/$logo" "$dest/$logo"
done
if cmp -s "$tmp" "$dest/kernel.json"; then
  say "kernelspec longtune is up to date: $dest/kernel.json"
else
  chmod 644 "$tmp"
  mv "$tmp" "$dest/kernel.json"
  say "wrote kernelspec longtune (Java (longtune)): $dest/kernel.json"
fi
say "class path: $classpath"
