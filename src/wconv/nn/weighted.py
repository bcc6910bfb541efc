"""Weighted convolution (Cammarasana & Patanè, arXiv 2505.24558).

The kernel ``W`` of an ``nn.ConvNd`` is multiplied element-wise by a separable density before the
convolution::

    y = conv(x, W ∘ Φ),   Φ = a_1 ⊗ a_2 ⊗ … ⊗ a_n,   a_i = [d_i, 1, flip(d_i)]

where ``d_i`` holds the weights of the outer rings first along spatial axis ``i`` (a 3-tap axis has
one value, a 5-tap axis two).  ``d = 1`` everywhere is exactly the standard convolution.  Unlike the
authors' code, the density may differ per axis (anisotropic) and kernels may be rectangular, e.g.
``(3, 5)``.  The density is a buffer (fixed, saved in the state_dict) or a parameter (learned,
optionally kept inside a range).  Because Φ scales the weight and not the input, the cost equals a
standard convolution's; :meth:`fold` bakes Φ into a plain ``nn.ConvNd`` for deployment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, get_args

import torch
from torch import Tensor, nn

DensitySpec = float | Sequence[float] | Sequence[Sequence[float]] | Tensor
"""A density: a scalar (every ring of every axis), ``d`` (outer ring first, shared by all axes) or
one ``d`` per spatial axis (anisotropic)."""

ConvKind = Literal["standard", "weighted", "learned"]
CONV_KINDS: tuple[str, ...] = get_args(ConvKind)  # ("standard", "weighted", "learned")


def _as_tuple(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, Sequence) else (value,) * dims


def _is_weightable(kernel_size: Sequence[int]) -> bool:
    """True for kernels whose every side is odd and that are larger than a single tap."""
    return all(k % 2 == 1 for k in kernel_size) and max(kernel_size) > 1


def density_vectors(
    density: DensitySpec, kernel_size: Sequence[int], layer: str = "WeightedConv"
) -> tuple[list[list[float]], bool]:
    """Normalise ``density`` to one ``d`` per axis for ``kernel_size``; also say if it is isotropic.

    Raises ``ValueError`` naming ``layer`` and the fix for every malformed density.
    """
    rings = [(k - 1) // 2 for k in kernel_size]
    if isinstance(density, Tensor):
        density = density.detach().cpu().tolist()
    if isinstance(density, int | float):
        per_axis = [[float(density)] * r for r in rings]
        isotropic = len(set(rings)) == 1
    elif len(density) > 0 and all(isinstance(v, int | float) for v in density):
        if len(set(rings)) != 1:
            raise ValueError(
                f"{layer}: kernel {tuple(kernel_size)} is rectangular, so a single density vector "
                f"is ambiguous; give one vector per axis, e.g. {[[1.0] * r for r in rings]}"
            )
        if len(density) != rings[0]:
            raise ValueError(
                f"{layer}: density {list(density)} has {len(density)} value(s) but a kernel of "
                f"size {kernel_size[0]} needs {rings[0]} (outer ring first), "
                f"e.g. {[0.9] * rings[0]}"
            )
        per_axis = [[float(v) for v in density] for _ in rings]  # type: ignore[arg-type]
        isotropic = True
    else:
        if len(density) != len(rings):
            raise ValueError(
                f"{layer}: a per-axis density needs one vector per spatial axis ({len(rings)}), "
                f"got {len(density)}; e.g. {[[0.9] * r for r in rings]}"
            )
        per_axis = []
        for axis, (vector, r) in enumerate(zip(density, rings, strict=True)):
            vector = [float(v) for v in (vector if isinstance(vector, Iterable) else [vector])]
            if len(vector) != r:
                raise ValueError(
                    f"{layer}: density for axis {axis} has {len(vector)} value(s) but kernel side "
                    f"{kernel_size[axis]} needs {r} (outer ring first)"
                )
            per_axis.append(vector)
        isotropic = False
    for vector in per_axis:
        for v in vector:
            if not math.isfinite(v) or v < 0:
                raise ValueError(
                    f"{layer}: density values must be finite and >= 0, got {v}; "
                    "use values such as 0.5..1.5 (1 = standard convolution)"
                )
    return per_axis, isotropic


def density_matrix(per_axis: Sequence[Tensor]) -> Tensor:
    """Φ = a_1 ⊗ … ⊗ a_n with a_i = [d_i, 1, flip(d_i)] (outer product over the spatial axes)."""
    dims = len(per_axis)
    phi: Tensor | None = None
    previous: Tensor | None = None
    for axis, d in enumerate(per_axis):
        # An isotropic density hands every axis the same d: its a is built once, and a single
        # ring (3-wide axis) needs no flip. Each op saved is a GPU launch per conv and step for a
        # learned density (benchmarks/ops_per_step.py).
        if d is not previous:
            a = torch.cat([d, d.new_ones(1), d.flip(0) if d.numel() > 1 else d])
            previous = d
        shape = [1] * dims
        shape[axis] = a.numel()
        phi = a.view(shape) if phi is None else phi * a.view(shape)
    assert phi is not None
    return phi


if TYPE_CHECKING:
    # The mixin always sits before an nn.ConvNd in the MRO; tell the type checker so.
    _MixinBase = nn.modules.conv._ConvNd
else:
    _MixinBase = object


class _WeightedConvMixin(_MixinBase):
    """Shared logic of :class:`WeightedConv1d`, :class:`WeightedConv2d`, :class:`WeightedConv3d`."""

    weight: Tensor
    bias: Tensor | None
    density: Tensor
    kernel_size: tuple[int, ...]
    _dims: int
    _plain: Callable[..., nn.modules.conv._ConvNd]  # nn.Conv1d / 2d / 3d

    def __init__(
        self,
        *args: Any,
        density: DensitySpec = 1.0,
        learnable: bool = False,
        density_range: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """The arguments of ``nn.ConvNd`` plus the density (fixed or ``learnable``, optionally
        kept inside ``density_range``)."""
        self._plain.__init__(self, *args, **kwargs)  # type: ignore[call-arg]
        self._init_density(density, learnable, density_range)

    def _init_density(
        self,
        density: DensitySpec,
        learnable: bool,
        density_range: tuple[float, float] | None,
    ) -> None:
        name = type(self).__name__
        if len(self.kernel_size) != self._dims:
            raise ValueError(
                f"{name}: kernel_size {self.kernel_size} has {len(self.kernel_size)} axes, "
                f"expected {self._dims}"
            )
        if not all(k % 2 == 1 for k in self.kernel_size):
            raise ValueError(
                f"{name}: kernel_size {self.kernel_size} has an even side; a density centred on "
                "the kernel needs odd sides (3, 5, 7, ...): use an odd kernel or a plain nn.Conv"
            )
        per_axis, isotropic = density_vectors(density, self.kernel_size, name)
        if density_range is not None:
            low, high = (float(v) for v in density_range)
            if not (0 <= low < high) or not math.isfinite(high):
                raise ValueError(
                    f"{name}: density_range must be (low, high) with 0 <= low < high, "
                    f"got {density_range}"
                )
            self.density_range: tuple[float, float] | None = (low, high)
        else:
            self.density_range = None
        flat = per_axis[0] if isotropic else [v for vector in per_axis for v in vector]
        sizes = [len(v) for v in per_axis]
        self.isotropic = isotropic
        self._axis_sizes = sizes
        values = torch.tensor(flat, dtype=self.weight.dtype, device=self.weight.device)
        if learnable:
            self.density = nn.Parameter(values)
        else:
            self.register_buffer("density", values)  # type: ignore[attr-defined]
        self._phi_cache: tuple[Any, Tensor] | None = None

    def density_per_axis(self) -> list[Tensor]:
        """The ``d`` vector of every spatial axis, outer ring first (range applied)."""
        d = self.density
        if self.density_range is not None:
            d = d.clamp(*self.density_range)
        if self.isotropic:
            return [d] * self._dims
        return list(torch.split(d, self._axis_sizes))

    def phi(self) -> Tensor:
        """The density matrix Φ with the kernel's spatial shape."""
        if self.density.requires_grad or torch.compiler.is_compiling():
            return density_matrix(self.density_per_axis())
        # A fixed density changes only through in-place writes (load_state_dict, fill_), which bump
        # the tensor version: caching Φ on it saves a handful of tiny kernels per call.
        key = (self.density._version, self.density.data_ptr(), self.density.dtype)
        if self._phi_cache is None or self._phi_cache[0] != key:
            self._phi_cache = (key, density_matrix(self.density_per_axis()))
        return self._phi_cache[1]

    def weighted_weight(self) -> Tensor:
        """``W ∘ Φ``: the kernel the convolution actually applies."""
        return self.weight * self.phi()

    def project_density_(self) -> None:
        """Clamp a learned density into its range in place (call after an optimizer step)."""
        if self.density_range is not None:
            with torch.no_grad():
                self.density.clamp_(*self.density_range)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weighted_weight(), self.bias)  # type: ignore[attr-defined]

    def extra_repr(self) -> str:
        base = super().extra_repr()  # type: ignore[misc]
        values = [round(v, 4) for v in self.density.detach().cpu().tolist()]
        kind = "learned" if isinstance(self.density, nn.Parameter) else "fixed"
        extra = f", density={values} ({kind}{'' if self.isotropic else ', per-axis'}"
        if self.density_range is not None:
            extra += f", range={self.density_range}"
        return base + extra + ")"

    def fold(self) -> nn.Module:
        """A plain ``nn.ConvNd`` whose weight is ``W ∘ Φ``: same outputs, no density."""
        conv = self._plain(
            self.in_channels,  # type: ignore[attr-defined]
            self.out_channels,  # type: ignore[attr-defined]
            self.kernel_size,
            stride=self.stride,  # type: ignore[attr-defined]
            padding=self.padding,  # type: ignore[attr-defined]
            dilation=self.dilation,  # type: ignore[attr-defined]
            groups=self.groups,  # type: ignore[attr-defined]
            bias=self.bias is not None,
            padding_mode=self.padding_mode,  # type: ignore[attr-defined]
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(self.weighted_weight())
            if self.bias is not None and conv.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    @classmethod
    def from_conv(
        cls,
        conv: nn.modules.conv._ConvNd,
        density: DensitySpec = 1.0,
        learnable: bool = False,
        density_range: tuple[float, float] | None = None,
    ) -> _WeightedConvMixin:
        """The weighted twin of ``conv``, sharing nothing but holding copies of its tensors."""
        twin = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
            density=density,
            learnable=learnable,
            density_range=density_range,
        )
        with torch.no_grad():
            twin.weight.copy_(conv.weight)
            if conv.bias is not None and twin.bias is not None:
                twin.bias.copy_(conv.bias)
        twin.train(conv.training)
        return twin


class WeightedConv1d(_WeightedConvMixin, nn.Conv1d):
    """``nn.Conv1d`` with kernel ``W ∘ a``, ``a = [d, 1, flip(d)]`` (see module docstring).

    ``y = conv1d(x, W ∘ a) + b``; the arguments are those of ``nn.Conv1d`` plus ``density``
    (``d``, outer ring first), ``learnable`` and ``density_range``.

    Shapes: input ``(N, C_in, L)``, output ``(N, C_out, L_out)`` exactly as ``nn.Conv1d``;
    ``weight`` ``(C_out, C_in / groups, k)``; the density has ``(k - 1) / 2`` values.

    Examples:
        >>> import torch
        >>> from wconv.nn import WeightedConv1d
        >>> conv = WeightedConv1d(2, 4, 5, padding=2, density=[0.25, 0.5])
        >>> conv.phi()
        tensor([0.2500, 0.5000, 1.0000, 0.5000, 0.2500])
        >>> conv(torch.randn(8, 2, 100)).shape
        torch.Size([8, 4, 100])
    """

    _dims = 1
    _plain = nn.Conv1d


class WeightedConv2d(_WeightedConvMixin, nn.Conv2d):
    """``nn.Conv2d`` with kernel ``W ∘ (a_h a_wᵀ)``, ``a = [d, 1, flip(d)]`` (module docstring).

    ``y = conv2d(x, W ∘ Φ) + b`` with ``Φ = a_h a_wᵀ``; the arguments are those of ``nn.Conv2d``
    plus ``density`` (a scalar, ``d`` outer ring first, or one ``d`` per axis), ``learnable``
    (``d`` becomes a parameter) and ``density_range`` (kept by :meth:`project_density_`).

    Shapes: input ``(N, C_in, H, W)``, output ``(N, C_out, H_out, W_out)`` exactly as
    ``nn.Conv2d``; ``weight`` ``(C_out, C_in / groups, k_h, k_w)`` and ``Φ`` ``(k_h, k_w)``.

    Examples:
        >>> import torch
        >>> from wconv.nn import WeightedConv2d
        >>> conv = WeightedConv2d(3, 8, 3, padding=1, density=0.5)
        >>> conv.phi()
        tensor([[0.2500, 0.5000, 0.2500],
                [0.5000, 1.0000, 0.5000],
                [0.2500, 0.5000, 0.2500]])
        >>> x = torch.randn(2, 3, 16, 16)
        >>> conv(x).shape
        torch.Size([2, 8, 16, 16])
        >>> torch.allclose(conv.fold()(x), conv(x), atol=1e-6)
        True
    """

    _dims = 2
    _plain = nn.Conv2d


class WeightedConv3d(_WeightedConvMixin, nn.Conv3d):
    """``nn.Conv3d`` with kernel ``W ∘ (a_d ⊗ a_h ⊗ a_w)``, ``a = [d, 1, flip(d)]``.

    ``y = conv3d(x, W ∘ Φ) + b``; the arguments are those of ``nn.Conv3d`` plus ``density``,
    ``learnable`` and ``density_range`` (as :class:`WeightedConv2d`).

    Shapes: input ``(N, C_in, D, H, W)``, output ``(N, C_out, D_out, H_out, W_out)`` exactly as
    ``nn.Conv3d``; ``Φ`` has the kernel's shape ``(k_d, k_h, k_w)``.

    Examples:
        >>> import torch
        >>> from wconv.nn import WeightedConv3d
        >>> conv = WeightedConv3d(1, 2, 3, padding=1, density=0.5)
        >>> conv.phi()[0]
        tensor([[0.1250, 0.2500, 0.1250],
                [0.2500, 0.5000, 0.2500],
                [0.1250, 0.2500, 0.1250]])
        >>> conv(torch.randn(1, 1, 4, 8, 8)).shape
        torch.Size([1, 2, 4, 8, 8])
    """

    _dims = 3
    _plain = nn.Conv3d


_TWINS: dict[type[nn.Module], type[_WeightedConvMixin]] = {
    nn.Conv1d: WeightedConv1d,
    nn.Conv2d: WeightedConv2d,
    nn.Conv3d: WeightedConv3d,
}
WEIGHTED_TYPES = tuple(_TWINS.values())


def is_weighted(module: nn.Module) -> TypeGuard[_WeightedConvMixin]:
    return isinstance(module, WEIGHTED_TYPES)


def fit_rings(vector: Sequence[float], rings: int) -> list[float]:
    """A ring density ``d`` (outer ring first) fitted to a kernel with ``rings`` rings.

    The rule for models that mix kernel sizes (one study density, e.g. NiN's 0.9 for its 3×3 and
    5×5 convs): ring ``r`` (counted from the centre) keeps its value, rings beyond the given ones
    repeat the outermost value.  So ``[0.9]`` becomes ``[0.9, 0.9]`` on a 5×5 (as a scalar does),
    ``[0.1, 0.9]`` becomes ``[0.1, 0.1, 0.9]`` on a 7×7 and ``[0.9]`` on a 3×3.
    """
    values = [float(v) for v in vector]
    if rings <= len(values):
        return values[len(values) - rings :]
    return [values[0]] * (rings - len(values)) + values


def _density_for(density: DensitySpec | Mapping[int, DensitySpec], kernel: Sequence[int]) -> Any:
    """Pick the density for one kernel of a model.

    A mapping is keyed by the largest kernel side (explicit: a missing side is an error).  A single
    ring vector on a square kernel of another size is fitted by :func:`fit_rings`; scalars and
    per-axis densities are passed on as they are (the layer checks them).
    """
    if isinstance(density, Mapping):
        side = max(kernel)
        if side not in density:
            raise ValueError(
                f"no density given for kernel size {side}; the mapping has {sorted(density)}"
            )
        return density[side]
    vector = density.detach().cpu().tolist() if isinstance(density, Tensor) else density
    if (
        isinstance(vector, Sequence)
        and len(vector) > 0
        and all(isinstance(v, int | float) for v in vector)
        and len(set(kernel)) == 1
    ):
        return fit_rings(vector, (kernel[0] - 1) // 2)  # type: ignore[arg-type]
    return density


def _replace_modules(model: nn.Module, swap: Callable[[str, nn.Module], nn.Module | None]) -> int:
    """Replace every submodule for which ``swap`` returns a module; return how many."""
    count = 0
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            new = swap(full, child)
            if new is not None:
                setattr(parent, child_name, new)
                count += 1
    return count


def convert(
    model: nn.Module,
    density: DensitySpec | Mapping[int, DensitySpec] = 1.0,
    *,
    learnable: bool = False,
    density_range: tuple[float, float] | None = None,
    skip_depthwise: bool = False,
    include: Callable[[str, nn.Module], bool] | None = None,
) -> int:
    """Replace, in place, every plain ``nn.ConvNd`` with an odd kernel > 1 by its weighted twin.

    Weights and biases are kept.  ``density`` may be a mapping from kernel side to density for
    models that mix kernel sizes; a single ring vector is fitted to each kernel by
    :func:`fit_rings`; ``skip_depthwise`` leaves ``groups == in_channels`` convs alone
    and ``include(name, module)`` filters further.  1×1 and even kernels are never converted.
    Returns the number of layers converted.

    Examples:
        >>> from torch import nn
        >>> from wconv.nn import convert, count_weighted, fold
        >>> model = nn.Sequential(
        ...     nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 5, groups=8)
        ... )
        >>> convert(model, density=0.9)  # the 1×1 conv stays plain
        2
        >>> fold(model), count_weighted(model)
        (2, 0)
    """

    def swap(name: str, module: nn.Module) -> nn.Module | None:
        twin = _TWINS.get(type(module))
        if twin is None or not isinstance(module, nn.modules.conv._ConvNd):
            return None
        if not _is_weightable(module.kernel_size):
            return None
        if skip_depthwise and module.groups > 1 and module.groups == module.in_channels:
            return None
        if include is not None and not include(name, module):
            return None
        return twin.from_conv(
            module, _density_for(density, module.kernel_size), learnable, density_range
        )

    return _replace_modules(model, swap)


def fold(model: nn.Module) -> int:
    """Replace, in place, every weighted conv by its folded plain conv; return how many."""
    return _replace_modules(model, lambda _, m: m.fold() if is_weighted(m) else None)


def ranged_layers(model: nn.Module) -> list[_WeightedConvMixin]:
    """The weighted layers of ``model`` whose density has a range: the only ones
    :func:`project_densities_` has to touch. Build it once and pass it every step."""
    return [m for m in model.modules() if is_weighted(m) and m.density_range is not None]


def project_densities_(model: nn.Module | Sequence[_WeightedConvMixin]) -> None:
    """Keep every learned density in its range (call after each optimizer step).

    ``model``: the model (walked on every call) or the list of :func:`ranged_layers`, which skips
    the walk over every module and the layers without a range (a per-step cost in the
    training loop: ResNet-56 has ~170 modules, of which only the learned convs need clamping)."""
    layers = ranged_layers(model) if isinstance(model, nn.Module) else model
    for module in layers:
        module.project_density_()


def count_weighted(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if is_weighted(m))


@dataclass(frozen=True)
class ConvFactory:
    """Builds the convolutions of a model: ``factory(in, out, kernel_size, **conv_kwargs)``.

    ``kind`` is ``standard`` (plain ``nn.ConvNd``), ``weighted`` (fixed density) or ``learned``
    (density is a parameter, initialised from ``density``).  ``density`` is a mapping by kernel
    side or one density for every kernel (a ring vector is fitted by :func:`fit_rings`, so
    one value serves a model's 3×3 and 5×5 convs).  Kernels that cannot carry a density
    (1×1, even sides) are plain convs for every kind, so the three kinds of one model share their
    parameter layout and, for the same seed, their initial weights.
    """

    kind: ConvKind = "standard"
    density: DensitySpec | Mapping[int, DensitySpec] = 1.0
    density_range: tuple[float, float] | None = None
    dims: int = 2

    def __post_init__(self) -> None:
        if self.kind not in CONV_KINDS:
            raise ValueError(f"unknown conv kind {self.kind!r}; choose one of {list(CONV_KINDS)}")
        if self.dims not in (1, 2, 3):
            raise ValueError(f"dims must be 1, 2 or 3, got {self.dims}")

    @property
    def plain(self) -> type[nn.Module]:
        return (nn.Conv1d, nn.Conv2d, nn.Conv3d)[self.dims - 1]

    def __call__(
        self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], **kwargs: Any
    ) -> nn.Module:
        kernel = _as_tuple(kernel_size, self.dims)
        if self.kind == "standard" or not _is_weightable(kernel):
            return self.plain(in_channels, out_channels, kernel, **kwargs)
        layer = _TWINS[self.plain]
        return layer(  # type: ignore[call-arg]
            in_channels,
            out_channels,
            kernel,
            density=_density_for(self.density, kernel),
            learnable=self.kind == "learned",
            density_range=self.density_range,
            **kwargs,
        )


def conv_factory(
    kind: ConvKind = "standard",
    density: DensitySpec | Mapping[int, DensitySpec] = 1.0,
    density_range: tuple[float, float] | None = None,
    dims: int = 2,
) -> ConvFactory:
    """The convolution builder every model of the registry takes as ``conv=``."""
    return ConvFactory(kind, density, density_range, dims)
