#!/usr/bin/env bash
# Install headless Chromium for the browser test, the way tests/cluster/start_slurm.sh installs
# SLURM: only when it is missing, with apt-get, as root. Prints the browser's path on success.
set -euo pipefail

die() {
    echo "install_chromium.sh: error: $*" >&2
    exit 1
}

found() { command -v chromium || command -v chromium-browser; }

if ! found >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "chromium is missing and installing it needs root; try: sudo $0"
    command -v apt-get >/dev/null || die "chromium is missing and apt-get is not available; install chromium"
    echo "install_chromium.sh: installing chromium (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
found || die "apt-get finished but no chromium executable is on PATH"
