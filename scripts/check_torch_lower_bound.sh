#!/usr/bin/env bash
# Prove the library's PyTorch lower bound: build the wheel, install it WITHOUT the study extra into
# a fresh venv with the PyTorch given (older than the study's pin, to prove a lower bound), and run
# the layer tests there.
#   scripts/check_torch_lower_bound.sh [TORCH_VERSION] [TORCHVISION_VERSION]
# Defaults: the lower bounds pyproject.toml claims, the oldest pair that passed here (README, "Use as
# a library"). Prints the versions that ran and the size of the library-only venv. Not in .ci/run:
# a CUDA build of torch makes it a 5.5 GB install of several minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TORCH="${1:-2.14.1}"
TORCHVISION="${2:-0.29.1}"
PYTHON="${PYTHON:-python3}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --quiet)
"${pip[@]}" wheel --no-deps --wheel-dir "$work/dist" "$ROOT"
# TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) adds the index of the small `+cpu`
# builds; without it pip uses its configured index and wheel cache.
extra=()
if [ -n "${TORCH_INDEX:-}" ]; then extra=(--extra-index-url "$TORCH_INDEX"); fi
"${pip[@]}" install "${extra[@]}" "torch==$TORCH" "torchvision==$TORCHVISION" "$work"/dist/wconv-*.whl
echo "library-only venv: $(du -sh "$work/venv" | cut -f1)"
"${pip[@]}" install pytest pytest-timeout

# Run from a copy of the tests so `import wconv` finds the installed wheel, not the source tree.
mkdir "$work/run"
cp "$ROOT/tests/conftest.py" "$ROOT/tests/test_nn_weighted.py" "$work/run/"
cd "$work/run"
"$work/venv/bin/python" -c \
    'import torch, torchvision, wconv; print("torch", torch.__version__, "torchvision", torchvision.__version__, "wconv", wconv.__version__, wconv.__file__)'
"$work/venv/bin/wconv" --version  # the CLI says its version even without the study extra
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider test_nn_weighted.py
