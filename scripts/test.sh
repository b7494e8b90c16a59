#!/usr/bin/env bash
# The project's test entry point: installs dependencies when asked, builds, runs every test
# (unit + integration) under CTest. Opt-in labels (fuzz, soak) are excluded.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${KL_SKIP_DEPS:-0}" != 1 ]; then scripts/install-deps.sh; fi
BUILD_DIR=${BUILD_DIR:-build} scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" -LE 'fuzz|soak|manual' --timeout 600
