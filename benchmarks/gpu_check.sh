#!/usr/bin/env bash
# One prepared GPU check (issue 17): the real engine's seconds per epoch, standard vs weighted vs
# learned, within 6 minutes on one H100/H200-class GPU, then the CUDA-graph tests (2 minutes at
# most; the whole check took 416 s on an H200):
#   1. ResNet-56 compiled with CUDA graphs (bf16 + channels_last + compute.compile:
#      reduce-overhead), CIFAR-100 shaped (45,000 train images), full epochs: the issue's
#      <= 1.5 s/epoch target. 1,024 val images: whole batches, so validation records one graph;
#   2. ResNet-56 and VGG-16-BN eager, fp32 and bf16 + channels_last (the paper's setting), 100 of
#      the 352 batches per epoch, the full epoch projected (marked in the CSV);
#   3. NAFNet (DIV2K paper-preset patches), bf16 + channels_last, 100 of its 1,440 batches per
#      epoch, projected;
#   4. the CUDA-graph trajectory tests (tests/test_speed_paths.py), which are skipped without CUDA.
# The most important part runs first; each has its own time limit, and engine_speed.py writes its
# CSV after every run, so a part cut short keeps what it measured.
#
#     bash benchmarks/gpu_check.sh OUT_DIR      # writes OUT_DIR/engine_speed_*.csv and logs
#
# Imports only torch, torchvision, numpy, scikit-image, torchmetrics, PyYAML, tqdm, jsonschema,
# piq, pytest and wconv's own chain (docs/performance.md lists what that chain pulls in).
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
status=0
part() {  # part SECONDS NAME ARGS...: one engine_speed.py call under its own time limit
    local limit=$1 name=$2
    shift 2
    timeout "$limit" "$py" "$here/engine_speed.py" --device cuda --data-root "$data" \
        --out "$out/engine_speed_$name.csv" "$@" 2>&1 | tee -a "$out/gpu_check.log" || status=1
}
# Epoch 1 pays for compilation and graph recording (warm-up, not timed).
part 220 graphs --models resnet56 --settings bf16+cl+graphs --epochs 3 --eval-images 1024
part 80 classification --models resnet56 vgg16_bn --settings fp32 bf16+cl --epochs 2 \
    --max-steps 100 --eval-images 1024
part 60 denoising --models nafnet --settings bf16+cl --epochs 2 --max-steps 100 --eval-images 8
timeout 120 "$py" -m pytest -q -p no:cacheprovider "$here/../tests/test_speed_paths.py" \
    -k cuda_graph 2>&1 | tee "$out/pytest_cuda_graphs.log" || status=1
exit $status
