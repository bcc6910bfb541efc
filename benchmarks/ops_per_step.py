"""Operations per training step, by conv kind: the CPU-side count of what a GPU launches.

In eager mode every top-level ATen operation of a training step (forward, backward, optimizer)
that computes something is at least one kernel launch on a GPU, so at CIFAR batch sizes, where
ResNet-56's kernels are tiny, the step is launch-bound and its time follows this count. Counted
with torch.profiler on the CPU (no GPU needed): ATen operations not called from inside another
ATen operation, leaving out the view operations that launch nothing (view, reshape, detach,
narrow, ...), for one step of SGD with momentum (foreach), after two warm-up steps.

    python benchmarks/ops_per_step.py --models resnet56 vgg16_bn
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from torch.profiler import ProfilerActivity, profile

from wconv.models import create

# Operations that only make a new view of the same memory: no kernel runs.
VIEWS = {"alias", "as_strided", "detach", "expand", "narrow", "permute", "reshape", "select",
         "slice", "split", "squeeze", "t", "transpose", "unflatten", "unsqueeze", "view",
         "_reshape_alias"}  # fmt: skip
KINDS = {
    "standard": {},
    "weighted": {"density": 0.8},
    "learned": {"density": 1.0, "density_range": (0.05, 1.5)},
}


def count_ops(model: str, kind: str, batch: int) -> Counter[str]:
    torch.manual_seed(0)
    net = create(model, conv=kind, num_classes=100, **KINDS[kind])
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, foreach=True)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 100, (batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(), step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return Counter(
        e.name
        for e in prof.events()
        if e.name.startswith("aten::")
        and e.name.removeprefix("aten::") not in VIEWS
        and not (e.cpu_parent is not None and e.cpu_parent.name.startswith("aten::"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet56"])
    parser.add_argument("--batch", type=int, default=32, help="the count does not depend on it")
    args = parser.parse_args()
    print(f"{'model':<10} {'kind':<9} {'ops/step':>8} {'x std':>6}  most frequent")
    for model in args.models:
        standard = 0
        for kind in KINDS:
            ops = count_ops(model, kind, args.batch)
            total = sum(ops.values())
            standard = standard or total
            common = ", ".join(f"{n.removeprefix('aten::')} {c}" for n, c in ops.most_common(4))
            print(f"{model:<10} {kind:<9} {total:>8} {total / standard:>6.2f}  {common}")


if __name__ == "__main__":
    main()
