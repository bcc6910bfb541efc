#!/usr/bin/env bash
# One prepared GPU check (issue 17), sized to finish within 6 minutes on one H100/H200-class GPU:
# the real engine's seconds per epoch, standard vs weighted vs learned interleaved, for
#   1. ResNet-56 compiled with CUDA graphs (bf16 + channels_last + compute.compile:
#      reduce-overhead), CIFAR-100 shaped (45,000 train images): the issue's ≤ 1.5 s/epoch target;
#   2. ResNet-56 and VGG-16-BN eager, fp32 and bf16 + channels_last: the paper's setting;
#   3. NAFNet (DIV2K paper-preset patches), bf16 + channels_last, 300 of its 1,440 batches per
#      epoch, the full epoch projected (marked in the CSV).
# The most important part runs first; each has its own time limit and engine_speed.py writes its
# CSV after every model and setting, so a part cut short keeps what it measured.
#
#     bash benchmarks/gpu_check.sh OUT_DIR      # writes OUT_DIR/engine_speed_*.csv and a log
#
# Imports only torch, torchvision, numpy, scikit-image, torchmetrics, PyYAML, tqdm and wconv's own
# chain (docs/performance.md lists what that chain pulls in).
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
part 200 graphs --models resnet56 --settings bf16+cl+graphs --epochs 3 --eval-images 1000
part 100 classification --models resnet56 vgg16_bn --settings fp32 bf16+cl --epochs 2 \
    --eval-images 1000
part 60 denoising --models nafnet --settings bf16+cl --epochs 2 --max-steps 300 --eval-images 8
exit $status
