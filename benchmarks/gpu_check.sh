#!/usr/bin/env bash
# One prepared GPU check (issue 17) of the whole-step CUDA graph (compute.cuda_graph), in one
# device call of under 10 minutes on one H100/H200-class GPU. Most important first; each part has
# its own time limit, so a part cut short costs only itself:
#   1. ResNet-56, CIFAR-100 shaped (45,000 train images), bf16 + channels_last + compile (default
#      mode) + cuda_graph: whole epochs of the engine's own epoch function, standard / weighted /
#      learned alternating in one process after a warm-up epoch each (compilation, the step's
#      eager warm-up and recording): the <= 1.5 s/epoch target and the ratios;
#   2. the GPU tests of the CUDA-graph paths (tests/test_speed_paths.py: reduce-overhead and the
#      whole-step graph against eager, SGD and Adam; skipped without CUDA);
#   3. NAFNet, DIV2K paper-preset patches, the same setting, 300 of its 1,440 batches per epoch
#      (projected): the <= 5 s/epoch target;
#   4. VGG-16-BN, bf16 + channels_last + cuda_graph without compile (no compile time to pay).
# Measured before (results/benchmarks/*_h200*): the eager and reduce-overhead epochs (the first
# version of this script, 416 s), and the bare whole-step loop benchmarks/step_graph_loop.py.
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
        --out "$out/engine_speed_$name.csv" --repeats 0 "$@" 2>&1 | tee -a "$out/gpu_check.log" \
        || status=1
}
# Limits sum to 525 s: a device call may last 600 s. Compilation is most of each part (on an
# H200: ResNet-56 56-62 s per conv kind, NAFNet about 45 s); the parts took about 120, 35, 55
# (NAFNet, one kind) and 30 s there.
part 180 stepgraph_resnet56 --models resnet56 --settings bf16+cl+compile+stepgraph --alternate 3
timeout 120 "$py" -m pytest -q -p no:cacheprovider "$here/../tests/test_speed_paths.py" \
    -k "cuda_graph or whole_step" 2>&1 | tee "$out/pytest_cuda_graphs.log" || status=1
part 180 stepgraph_nafnet --models nafnet --settings bf16+cl+compile+stepgraph --alternate 2 \
    --max-steps 300 --eval-images 8
part 45 stepgraph_vgg16_bn --models vgg16_bn --settings bf16+cl+stepgraph --alternate 3
exit $status
