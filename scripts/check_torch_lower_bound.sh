#!/usr/bin/env bash
# Prove the library's PyTorch lower bound: build the wheel, install it WITHOUT the study extra into
# a fresh venv with the PyTorch given (older than the study's pin, to prove a lower bound), and run
# the library's tests there: the layers (tests/test_nn_weighted.py) and the model zoo
# (tests/test_models_classification.py, tests/test_models_restoration.py), which import nothing
# but torch, torchvision and wconv (plus scripts/model_card.py, itself torch + wconv only).
#   scripts/check_torch_lower_bound.sh [TORCH_VERSION] [TORCHVISION_VERSION]
# Defaults: the lower bounds pyproject.toml claims (torch 2.3.1, torchvision 0.18.1: 2.2.2 lacks
# torch.compiler.is_compiling), the oldest pair that passed here (README, "Use as
# a library"). Prints the versions that ran, the size of the library-only venv and the timings.
# Not in .ci/run: a CUDA build of torch makes it a 4-5 GB install of several minutes.
# Environment:
#   PYTHON=python3.11      the interpreter of the venv (default python3)
#   TORCH_INDEX=URL        an extra index, e.g. https://download.pytorch.org/whl/cpu for `+cpu` builds
#   TORCHVISION_NO_DEPS=1  install torchvision with --no-deps (keeps its exact torch pin from
#                          replacing a local-version torch such as 2.13.0+cpu)
#   TESTS="a.py b.py"      the test files to run (default: the three above)
#   IGNORE_BOUNDS=1        probe below the bounds the wheel claims: install the wheel with --no-deps
#                          (+ numpy) next to the PyTorch given; without it pip refuses a torch the
#                          wheel excludes (ResolutionImpossible). A passing probe is not yet the
#                          proof: lower pyproject.toml's bounds, then rerun without it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TORCH="${1:-2.3.1}"
TORCHVISION="${2:-0.18.1}"
PYTHON="${PYTHON:-python3}"
TESTS="${TESTS:-test_nn_weighted.py test_models_classification.py test_models_restoration.py}"

start=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --quiet)
"${pip[@]}" wheel --no-deps --wheel-dir "$work/dist" "$ROOT"
# TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) adds the index of the small `+cpu`
# builds; without it pip uses its configured index and wheel cache.
extra=()
if [ -n "${TORCH_INDEX:-}" ]; then extra=(--extra-index-url "$TORCH_INDEX"); fi
# `===` (exact string) as `torch==2.13.0` would also take 2.13.0+cpu (PEP 440 ignores the local
# label), which pip prefers: this installs exactly the build asked for.
# One resolution for torch, torchvision and the wheel: a torch the wheel's bounds exclude is then a
# ResolutionImpossible, never a silent upgrade to a newer torch.
wheel=("$work"/dist/wconv-*.whl)
together=("${wheel[@]}")
if [ "${IGNORE_BOUNDS:-0}" = 1 ]; then together=(numpy); fi
if [ "${TORCHVISION_NO_DEPS:-0}" = 1 ]; then
    "${pip[@]}" install "${extra[@]}" "torch===$TORCH" "${together[@]}"
    "${pip[@]}" install "${extra[@]}" --no-deps "torchvision===$TORCHVISION" pillow
else
    "${pip[@]}" install "${extra[@]}" "torch===$TORCH" "torchvision===$TORCHVISION" "${together[@]}"
fi
if [ "${IGNORE_BOUNDS:-0}" = 1 ]; then "${pip[@]}" install --no-deps "${wheel[@]}"; fi
"$work/venv/bin/python" -m pip check || true  # says so where a probe broke a requirement
echo "library-only venv: $(du -sh "$work/venv" | cut -f1) (install: $((SECONDS - start)) s)"
"${pip[@]}" install pytest pytest-timeout

# Run from a copy of the tests so `import wconv` finds the installed wheel, not the source tree;
# the same tests/ + scripts/ layout, as the model tests load ../scripts/model_card.py.
mkdir -p "$work/run/tests" "$work/run/scripts"
cp "$ROOT/tests/conftest.py" "$work/run/tests/"
for t in $TESTS; do cp "$ROOT/tests/$t" "$work/run/tests/"; done
cp "$ROOT/scripts/model_card.py" "$work/run/scripts/"
cd "$work/run"
"$work/venv/bin/python" -c \
    'import torch, torchvision, wconv; print("torch", torch.__version__, "torchvision", torchvision.__version__, "wconv", wconv.__version__, wconv.__file__)'
"$work/venv/bin/wconv" --version  # the CLI says its version even without the study extra
tests_start=$SECONDS
status=0
(cd tests && "$work/venv/bin/python" -m pytest -q -p no:cacheprovider $TESTS) || status=$?
echo "torch $TORCH, torchvision $TORCHVISION: pytest exit $status (tests: $((SECONDS - tests_start)) s, total: $((SECONDS - start)) s)"
exit "$status"
