#!/usr/bin/env bash
# The one test command: installs dependencies, builds with warnings as errors, runs every test.
# GPU tests skip (and say so) where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh -DMICROMIX_WERROR=ON
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
