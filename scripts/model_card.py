"""Write docs/models.md: parameters, FLOPs and weighted layers of every registered model.

Usage: ``.venv/bin/python scripts/model_card.py [--output docs/models.md]``

Every model of ``wconv.models.list_models()`` is built at its default options (classification
models with 100 classes, as for CIFAR-100) and run once on one image — 32×32 for classification,
64×64 for every other task, with the channels of the builder's ``in_channels`` default (3 when it
has none) — under ``torch.utils.flop_counter.FlopCounterMode``.  The weighted twin
(``conv="weighted"``) is built to count and locate its weighted convolutions.  :data:`VARIANTS`
adds rows of registered models built with other options (documented choices).  The notes at the end
are the docstrings of the modules that define the models, so the decisions they document stay next
to the numbers.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from wconv.data.deblur import sample_psfs
from wconv.models import create, list_models, model_task, registry
from wconv.nn import is_weighted

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # Not registered (a study cell names a registered model), built here to show the choices the
    # notes document beside the default: the gMLP without its added conv stem.
    "gmlp(stem_width=0)": ("gmlp", {"stem_width": 0}),
    # The bank a deblur run starts from (wconv.train.engine.build_model): the default deblur
    # data's local PSFs on a 3×3 lattice of the field, instead of 4 generic Gaussians.
    "multiwienernet(psfs=sample_psfs)": (
        "multiwienernet",
        {"psfs": sample_psfs({"dataset": "deblur"}, grid=3)},
    ),
    # The broader reading of the 5×5 NAFNet/CGNet: kernel_size also sets the blocks' expansion,
    # projection and FFN convs (1×1 as published), so its k5/k3 FLOPs ratio shows beside the
    # default's. Small configs: the published ones at enlarge=all have hundreds of millions of
    # parameters (their ratios are in docs/models-restoration.md).
    "nafnet(enlarge=all)": ("nafnet", {"enlarge": "all"}),
    "cgnet(enlarge=all)": ("cgnet", {"enlarge": "all"}),
}
"""Card rows built from a registered model with other options: label → (model, options)."""

INPUT_SIDE = {"classification": 32}
"""Input side per task; any task not listed (restoration, deblurring, ...) uses DEFAULT_SIDE."""
DEFAULT_SIDE = 64
CLASSIFICATION_CLASSES = 100


@dataclass(frozen=True)
class Card:
    name: str
    task: str
    input_shape: tuple[int, ...]
    params: int
    flops: int
    weighted: int
    weighted_kernels: str
    weighted_where: list[str]
    module: str
    # At kernel_size=5 (models whose builder takes it): weighted kernels, FLOPs over k = 3 FLOPs.
    k5_kernels: str | None = None
    k5_flops_ratio: float | None = None


def _render_segment(values: frozenset[str]) -> str:
    """One dotted-name segment: ``3`` or ``{0-8}`` or ``conv{1,2}`` or ``{a,b}``."""
    if len(values) == 1:
        return next(iter(values))
    split = [re.fullmatch(r"(\D*)(\d+)", v) for v in values]
    prefixes = {m.group(1) for m in split if m}
    if all(split) and len(prefixes) == 1:
        numbers = sorted(int(m.group(2)) for m in split if m)
        runs: list[str] = []
        start = previous = numbers[0]
        for n in [*numbers[1:], None]:
            if n is not None and n == previous + 1:
                previous = n
                continue
            if previous - start > 1:
                runs.append(f"{start}-{previous}")
            else:  # one or two numbers read better listed: {1,2} rather than {1-2}
                runs += sorted({str(start), str(previous)}, key=int)
            if n is not None:
                start = previous = n
        return f"{prefixes.pop()}{{{','.join(runs)}}}"
    return "{" + ",".join(sorted(values)) + "}"


def compress_names(names: Sequence[str]) -> list[str]:
    """Compress dotted module names into exact patterns, e.g. ``stages.{0-2}.{0-8}.conv{1,2}.0``.

    Two patterns merge only when they agree on every segment but one, so each pattern stands for
    exactly the names it replaced (the Cartesian product of its segments).
    """
    patterns: list[tuple[frozenset[str], ...]] = [
        tuple(frozenset([s]) for s in name.split(".")) for name in names
    ]
    changed = True
    while changed:
        changed = False
        for position in range(max((len(p) for p in patterns), default=0) - 1, -1, -1):
            # Patterns that agree everywhere but at `position` share a key (a short pattern keys on
            # itself); dicts keep first appearance, so the output follows the model's order.
            groups: dict[tuple, list[tuple[frozenset[str], ...]]] = {}
            for p in patterns:
                key = (p[:position], p[position + 1 :]) if position < len(p) else (p, None)
                groups.setdefault(key, []).append(p)
            patterns = []
            for members in groups.values():
                if len(members) == 1:
                    patterns.append(members[0])
                    continue
                first = members[0]
                union = frozenset().union(*(m[position] for m in members))
                patterns.append((*first[:position], union, *first[position + 1 :]))
                changed = True
    return [".".join(_render_segment(segment) for segment in p) for p in patterns]


def _default_in_channels(name: str) -> int:
    """The builder's ``in_channels`` default (grayscale deblurring models take 1), else RGB.

    The registry has no public accessor for a builder's options, hence the private lookup.
    """
    parameter = inspect.signature(registry._REGISTRY[name]).parameters.get("in_channels")
    if parameter is None or not isinstance(parameter.default, int):
        return 3
    return parameter.default


def _flops(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.randn(shape))
    return counter.get_total_flops()


def _weighted(name: str, options: dict[str, int]) -> tuple[list[str], str]:
    """The weighted twin's weighted module names and its kernel sizes with their counts."""
    twin = create(name, conv="weighted", **options)
    found = [(n, m) for n, m in twin.named_modules() if is_weighted(m)]
    sizes = Counter("×".join(map(str, m.kernel_size)) for _, m in found)
    return [n for n, _ in found], ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items()))


def measure(name: str, extra: dict[str, Any] | None = None, label: str | None = None) -> Card:
    """Build ``name`` (standard and weighted, at k = 3 and, if it takes one, at kernel_size=5)
    with the builder options ``extra`` and measure it on one input image; the card is called
    ``label`` (default ``name``)."""
    task = model_task(name)
    options = {"num_classes": CLASSIFICATION_CLASSES} if task == "classification" else {}
    options.update(extra or {})
    side = INPUT_SIDE.get(task, DEFAULT_SIDE)
    shape = (1, _default_in_channels(name), side, side)
    torch.manual_seed(0)
    model = create(name, **options)
    flops = _flops(model, shape)
    names, kernels = _weighted(name, options)
    k5_kernels = k5_ratio = None
    if "kernel_size" in inspect.signature(registry._REGISTRY[name]).parameters:
        k5 = {**options, "kernel_size": 5}
        k5_ratio = _flops(create(name, **k5), shape) / flops
        k5_kernels = _weighted(name, k5)[1]
    return Card(
        name=label or name,
        task=task,
        input_shape=shape,
        params=sum(p.numel() for p in model.parameters()),
        flops=flops,
        weighted=len(names),
        weighted_kernels=kernels,
        weighted_where=compress_names(names),
        module=type(model).__module__,
        k5_kernels=k5_kernels,
        k5_flops_ratio=k5_ratio,
    )


def measure_all() -> list[Card]:
    """Every registered model at its defaults, each followed by its :data:`VARIANTS`."""
    cards = []
    for name in list_models():
        jobs = [(name, {}, name)] + [(m, o, lb) for lb, (m, o) in VARIANTS.items() if m == name]
        for model, options, label in jobs:
            card = measure(model, options, label)
            print(
                f"{label}: {card.params:,} params, {card.flops / 1e9:.3f} GFLOPs, "
                f"{card.weighted} weighted",
                file=sys.stderr,
            )
            cards.append(card)
    return cards


def _module_doc(module: str) -> str:
    doc = sys.modules[module].__doc__ or "(no module docstring)"
    return doc.strip()


def render(cards: Sequence[Card]) -> str:
    lines = [
        "# Model zoo",
        "",
        "Generated by `scripts/model_card.py` from the registry (`wconv.models.list_models()`);",
        "do not edit by hand.",
        "",
        "Parameters and FLOPs are those of the standard twin at its default options",
        f"(classification models with {CLASSIFICATION_CLASSES} classes), on one image of the",
        "shape given. FLOPs are what `torch.utils.flop_counter.FlopCounterMode` counts: matrix",
        "products and convolutions, a multiply-add being 2 FLOPs; norms, activations and pooling",
        "are not counted. The weighted twin has the same parameters and FLOPs (Φ scales the",
        'kernel, not the input). Weighted layers are those of `conv="weighted"` (every conv with',
        "an odd kernel > 1); in their module names `{a-b}` stands for each index a..b and `{x,y}`",
        "for each listed value.",
        "",
        "Densities of models that mix kernel sizes: a study cell gives one density `d` for",
        "its kernel size (outer ring first). Every other odd kernel of the model gets it",
        "fitted ring by ring from the centre (`wconv.nn.weighted.fit_rings`): ring r keeps",
        "its value, rings beyond the given ones repeat the outermost value. So NiN's and",
        "EfficientNet-B0's 5×5 convs take `[0.9]` as `[0.9, 0.9]` (as a scalar 0.9 would),",
        "and a 5×5 `[0.1, 0.9]` on a 3×3 conv is `[0.9]`. This reads the paper's one density",
        "per classification model as one value per ring; a mapping `{3: [d], 5: [1.0, 1.0]}`",
        "passed to `create` gives the other reading (only the 3×3 convs weighted). `wconv",
        "grid` (and every job) first builds each distinct cell's model on the meta device.",
        "",
        "The last two columns build the model with `kernel_size=5` (the 5×5 denoising cells; only",
        "models whose builder takes a kernel size): which convs are then weighted, and its FLOPs",
        "over the k = 3 FLOPs. What `kernel_size` widens is each model's documented choice (notes",
        "below), e.g. NAFNet/CGNet widen their intro, ending and depthwise convs only; their",
        "`enlarge=all` rows also widen every block's expansion, projection and FFN conv.",
        "",
        "A row `name(option=value)` is the registered model built with that option instead of its",
        "default, to show a documented choice beside it (a study selects it through",
        "`<study>.model_options.<name>` in params.yaml). `multiwienernet(psfs=sample_psfs)` is",
        "the PSF bank every deblurring run starts from: the 9 local PSFs of the data's PSF model",
        "(`wconv.data.deblur.sample_psfs`, 3×3 lattice; default settings: 21 px, σ 0.8 → 3.0 px).",
        "",
        "| model | task | input | parameters | GFLOPs / image | weighted layers | kernels (k = 3) "
        "| kernels (k = 5) | FLOPs k5 / k3 |",
        "|---|---|---|---:|---:|---:|---|---|---:|",
    ]
    for c in cards:
        shape = "×".join(map(str, c.input_shape))
        ratio = "–" if c.k5_flops_ratio is None else f"{c.k5_flops_ratio:.2f}"
        lines.append(
            f"| `{c.name}` | {c.task} | {shape} | {c.params:,} | {c.flops / 1e9:.3f} "
            f"| {c.weighted} | {c.weighted_kernels or '–'} | {c.k5_kernels or '–'} | {ratio} |"
        )
    lines += ["", "## Where the weighted layers are", ""]
    for c in cards:
        where = ", ".join(f"`{w}`" for w in c.weighted_where) or "none"
        lines.append(f"- `{c.name}` ({c.weighted}): {where}")
    lines += ["", "## Architecture notes and decisions", ""]
    seen: dict[str, list[str]] = {}
    for c in cards:
        seen.setdefault(c.module, []).append(c.name)
    for module, names in seen.items():
        title = ", ".join(f"`{n}`" for n in names)
        lines += [f"### {title} (`{module}`)", "", _module_doc(module), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)  # mkstemp makes the file private; give it the usual permissions
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "docs" / "models.md"
    parser.add_argument("--output", type=Path, default=default, help=f"default: {default}")
    args = parser.parse_args(argv)
    cards = measure_all()
    write_atomic(args.output, render(cards))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
