"""The whole training step as one CUDA graph, in a bare loop: how fast the device can train.

For each ``model:kind:variant`` given, the model (channels_last, bf16 autocast) trains its paper
recipe's step (ResNet-56 / VGG-16-BN: label-smoothed cross-entropy, fused SGD with momentum;
NAFNet: MSE, fused capturable Adam) with the learning rate in a device tensor. Three steps run
eagerly on a side stream (cuDNN autotuning, compilation, optimizer state), then the step
(forward, loss, backward, update, density projection) is recorded once with ``torch.cuda.graph``
and replayed. Per step, outside the graph: a random batch gathered from uint8 images on the
device, copied into the graph's input buffers, and the loss summed on the device. Prints
milliseconds per step over ``STEPS`` replays (after 20 untimed) and the epoch it projects to
(351 steps of 128 CIFAR images; 1,440 of 16 DIV2K patches). ``variant``: ``eager`` (the model's
own kernels recorded) or ``compiled`` (``torch.compile``'s default mode, inductor's kernels
recorded). Data are random: the step's cost does not depend on pixel values (NAFNet's target is
its input, so its loss is near 0).

This is the loop that showed what the engine's ``compute.cuda_graph`` (``engine.StepGraph``)
should reach; it needs a CUDA device and imports only torch and wconv.

    python benchmarks/step_graph_loop.py 300 resnet56:standard:compiled nafnet:standard:compiled
"""

import sys
import time

import torch
from torch import nn

from wconv.models import create
from wconv.nn.weighted import project_densities_, ranged_layers

torch.backends.cudnn.benchmark = True
dev = torch.device("cuda")
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def build(model: str, kind: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor | None, int]:
    kw: dict = {} if kind == "standard" else {"density": 0.75 if kind == "weighted" else 1.0}
    if kind == "learned":
        kw["density_range"] = (0.05, 1.5)
    torch.manual_seed(0)
    if model == "nafnet":
        net = create("nafnet", conv=kind, in_channels=3, **kw)
        data = torch.randint(0, 255, (23040, 3, 64, 64), dtype=torch.uint8, device=dev)
        bs, target = 16, None
    else:
        net = create(model, conv=kind, num_classes=100, **kw)
        data = torch.randint(0, 255, (45000, 3, 32, 32), dtype=torch.uint8, device=dev)
        bs, target = 128, torch.randint(0, 100, (45000,), device=dev)
    net = net.to(dev, memory_format=torch.channels_last)
    return net, data, target, bs


def run(model: str, kind: str, variant: str) -> float:
    net, data, labels, bs = build(model, kind)
    fwd = torch.compile(net) if variant == "compiled" else net
    lr = torch.tensor(0.1 if labels is not None else 1e-3, device=dev)
    dens = [p for n, p in net.named_parameters() if n.endswith("density")]
    ids = {id(p) for p in dens}
    groups: list[dict] = [{"params": [p for p in net.parameters() if id(p) not in ids]}]
    if dens:
        groups.append({"params": dens, "lr": torch.tensor(0.01, device=dev), "weight_decay": 0.0})
    opt: torch.optim.Optimizer
    if labels is not None:
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=5e-5, fused=True)
        crit: nn.Module = nn.CrossEntropyLoss(label_smoothing=0.1)
    else:
        opt = torch.optim.Adam(groups, lr=lr, fused=True, capturable=True)
        crit = nn.MSELoss()
    ranged = ranged_layers(net)
    shape = (bs, 3, *data.shape[2:])
    sx = torch.empty(shape, device=dev).contiguous(memory_format=torch.channels_last)
    classes = labels is not None
    sy = torch.empty(bs, dtype=torch.long, device=dev) if classes else torch.empty_like(sx)

    def load() -> None:
        idx = torch.randint(0, len(data), (bs,), device=dev)
        x = data[idx].float().div_(255)
        sx.copy_(x)
        sy.copy_(labels[idx] if labels is not None else x)

    def step() -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            loss = crit(fwd(sx).float(), sy)
        loss.backward()
        opt.step()
        project_densities_(ranged)
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    started = time.perf_counter()
    with torch.cuda.stream(side):
        for _ in range(3):
            load()
            opt.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    warm = time.perf_counter() - started
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = step()
    total = torch.zeros((), dtype=torch.float64, device=dev)
    for _ in range(20):
        load()
        graph.replay()
        total += static_loss.double()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(STEPS):
        load()
        graph.replay()
        total += static_loss.double()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - started) / STEPS * 1e3
    steps_per_epoch = 45000 // 128 if labels is not None else 23040 // 16
    print(f"{model:9s} {kind:9s} {variant:9s} {ms:7.3f} ms/step  epoch "
          f"{ms * steps_per_epoch / 1e3:6.2f} s  (warm-up {warm:.1f} s, loss "
          f"{float(static_loss.detach()):.3f} finite={bool(torch.isfinite(total))})",
          flush=True)  # fmt: skip
    return ms


if __name__ == "__main__":
    for spec in sys.argv[2:]:
        model, kind, variant = spec.split(":")
        try:
            run(model, kind, variant)
        except Exception as error:  # one failed model does not cost the others' numbers
            print(f"{spec}: FAILED {type(error).__name__}: {str(error)[:400]}", flush=True)
