#!/usr/bin/env bash
# Install a C++ compiler for torch.compile's CPU backend (inductor writes and builds C++), the way
# tests/browser/install_chromium.sh installs Chromium: only when missing, with apt-get, as root.
# Prints the compiler's path on success.
set -euo pipefail

die() {
    echo "install_cxx.sh: error: $*" >&2
    exit 1
}

found() { command -v g++ || command -v c++; }

if ! found >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "no C++ compiler and installing g++ needs root; try: sudo $0"
    command -v apt-get >/dev/null || die "no C++ compiler and apt-get is not available; install g++"
    echo "install_cxx.sh: installing g++ (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends g++ libc6-dev >/dev/null
fi
found || die "apt-get finished but no g++ is on PATH"
