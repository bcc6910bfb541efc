#!/usr/bin/env bash
# One prepared GPU check (issue 17): the real engine's seconds per epoch for ResNet-56, VGG-16-BN
# (CIFAR-100 shaped, 45,000 train images) and NAFNet (DIV2K paper-preset patches), standard vs
# weighted vs learned, interleaved, fp32 eager, bf16 + channels_last, and ResNet-56 compiled with
# CUDA graphs. Sized to finish within 10 minutes on one H100/H200-class GPU: NAFNet times 300 of its 1,440 batches per epoch and the
# full epoch is projected (marked in the CSV); the CIFAR models time whole epochs.
#
#     bash benchmarks/gpu_check.sh OUT_DIR      # writes OUT_DIR/engine_speed_*.csv
#
# Imports only torch, torchvision, numpy, scikit-image, torchmetrics and wconv's own chain (see
# docs/performance.md for the third-party modules that chain pulls in).
set -euo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# Classification: 2 epochs per run (1 warm-up + 1 timed), two compute settings.
timeout 250 "$py" "$here/engine_speed.py" --device cuda --models resnet56 vgg16_bn \
  --settings fp32 bf16+cl --epochs 2 --eval-images 1000 --data-root "$data" \
  --out "$out/engine_speed_classification.csv"
# Denoising: NAFNet, 300 batches of 16 per epoch (projected to the full 23,040 patches).
timeout 100 "$py" "$here/engine_speed.py" --device cuda --models nafnet \
  --settings bf16+cl --epochs 2 --max-steps 300 --eval-images 8 --data-root "$data" \
  --out "$out/engine_speed_denoising.csv"
# ResNet-56 compiled with CUDA graphs (compute.compile: reduce-overhead): epoch 1 pays for the
# compilation and is the warm-up; the later epochs are the engine at the hardware's pace.
timeout 240 "$py" "$here/engine_speed.py" --device cuda --models resnet56 \
  --settings bf16+cl+graphs --epochs 3 --eval-images 1000 --data-root "$data" \
  --out "$out/engine_speed_graphs.csv"
