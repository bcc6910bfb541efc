"""CoordGate and CoordConv: convolutions that know where they are.

CoordGate (Howard, Norreys & Döpp, arXiv 2401.04680) multiplies the output of an ordinary k×k
convolution by a gate computed from the pixel coordinates alone::

    y = P( conv_k(x) ⊙ g(C) ),   g = σ_gate( f_L ∘ a ∘ … ∘ a ∘ f_1 (C) )

``C`` holds one channel per spatial axis with the coordinates normalised to [-1, 1]
(``linspace(-1, 1, n)`` along each axis, of whatever size arrives); ``f_i`` are 1×1 convolutions
(a per-pixel MLP), ``a`` the hidden activation, ``σ_gate`` the gate non-linearity and ``P`` an
optional 1×1 output projection (the form of the first author's later code).  With the projection,
output channel ``o`` at position ``p`` is ``Σ_c P_oc g_c(p) (k_c * x)(p)``: a filter that is a
position-dependent mixture of the ``filters`` learned kernels, i.e. a spatially-varying
convolution at the cost of one conv plus a per-pixel MLP that does not depend on the batch.

CoordConv (Liu et al., NeurIPS 2018) concatenates the same coordinate channels to the input of a
convolution.

Both take ``conv: ConvFactory`` for their k×k convolution, so they work with the standard,
weighted and learned-density kinds, and in 1D/2D/3D (``conv.dims``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from wconv.nn.weighted import ConvFactory

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "none": nn.Identity,
}
"""Hidden activations of the coordinate MLP (``none`` makes the gate affine in the coordinates,
as in one version of the author's code; it then cannot express a non-monotonic gain)."""

GATES: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda t: t,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
}
"""Gate non-linearities.  ``identity`` lets a filter's gain change sign across the field (the
mixture above then spans any combination of the basis kernels); ``relu`` is the author's later
choice; ``sigmoid`` bounds the gate in (0, 1)."""


@functools.lru_cache(maxsize=64)
def _cached_grid(
    shape: tuple[int, ...], device: torch.device, dtype: torch.dtype, inference: bool
) -> Tensor:
    # ``inference`` is part of the key because a tensor made under torch.inference_mode cannot be
    # saved for backward: an evaluation pass must not poison the grid a later training step uses.
    del inference
    axes = [
        torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)
        if n > 1
        else torch.zeros(1, device=device, dtype=dtype)
        for n in shape
    ]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return grid.unsqueeze(0)


def coordinate_grid(
    shape: tuple[int, ...], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> Tensor:
    """Normalised coordinates ``(1, len(shape), *shape)``: channel ``i`` runs from -1 to 1 along
    spatial axis ``i`` (for 2D: channel 0 = row/y, channel 1 = column/x; a side of 1 gives 0).

    Cached per (shape, device, dtype) and shared by every layer; the result must not be modified
    in place.
    """
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"coordinate_grid: every side must be >= 1, got shape {tuple(shape)}")
    return _cached_grid(
        tuple(int(n) for n in shape),
        torch.device(device),
        dtype,
        torch.is_inference_mode_enabled(),
    )


def _check_choice(name: str, value: str, options: Mapping[str, object], layer: str) -> None:
    if value not in options:
        raise ValueError(f"{layer}: unknown {name} {value!r}; choose one of {sorted(options)}")


class CoordGate(nn.Module):
    """``y = P(conv_k(x) ⊙ g(C))`` — a convolution gated per pixel and per channel by an MLP of the
    normalised coordinates (CoordGate, arXiv 2401.04680; formula in the module docstring).

    Args:
        in_channels, out_channels, kernel_size: as for ``nn.ConvNd`` ('same' padding).
        conv: builds the k×k convolution (standard / weighted / learned); ``conv.dims`` sets
            1D / 2D / 3D.
        filters: channels of the k×k conv, i.e. number of gated basis filters (default
            ``out_channels``).
        encoder_width, encoder_depth: the coordinate MLP is ``dims → width (× depth) → filters``
            made of 1×1 convs (default 32, 2 hidden layers; the author's code uses 64, 2).
        activation: hidden activation of the MLP, one of :data:`ACTIVATIONS`.
        gate: gate non-linearity, one of :data:`GATES`.
        project: apply the 1×1 output projection ``P`` (``filters → out_channels``); without it
            ``filters`` must equal ``out_channels`` and each channel is one gated filter.
        bias: bias of the k×k conv.
        padding_mode: padding of the k×k conv (``zeros``, ``reflect``, ``replicate``, ``circular``).

    At construction the last MLP layer's bias is set so that the gate starts near 1 (see
    :meth:`reset_encoder`): the layer starts close to a plain conv and learns where to deviate.

    Shapes: input ``(N, in_channels, *spatial)``, output ``(N, out_channels, *spatial)`` (any
    spatial size: the coordinates are regenerated per size); the gate is
    ``(1, filters, *spatial)``.

    Examples:
        >>> import torch
        >>> from wconv.nn import CoordGate, conv_factory
        >>> layer = CoordGate(3, 8, 3, conv=conv_factory("weighted", density=0.8))
        >>> layer(torch.randn(2, 3, 32, 24)).shape
        torch.Size([2, 8, 32, 24])
        >>> layer.gate((32, 24), torch.empty(0)).shape
        torch.Size([1, 8, 32, 24])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        conv: ConvFactory | None = None,
        filters: int | None = None,
        encoder_width: int = 32,
        encoder_depth: int = 2,
        activation: str = "relu",
        gate: str = "identity",
        project: bool = True,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        conv = conv if conv is not None else ConvFactory()
        _check_choice("activation", activation, ACTIVATIONS, name)
        _check_choice("gate", gate, GATES, name)
        filters = out_channels if filters is None else filters
        if encoder_width < 1 or encoder_depth < 0 or filters < 1:
            raise ValueError(
                f"{name}: need encoder_width >= 1, encoder_depth >= 0 and filters >= 1, got "
                f"{encoder_width}, {encoder_depth}, {filters}"
            )
        if not project and filters != out_channels:
            raise ValueError(
                f"{name}: without the output projection filters ({filters}) must equal "
                f"out_channels ({out_channels}); set project=True or filters=out_channels"
            )
        if kernel_size % 2 == 0:
            raise ValueError(f"{name}: kernel_size {kernel_size} must be odd for 'same' padding")
        self.dims = conv.dims
        self.gate_name = gate
        self.conv = conv(
            in_channels,
            filters,
            kernel_size,
            padding=kernel_size // 2,
            bias=bias,
            padding_mode=padding_mode,
        )
        point = conv.plain  # the MLP is 1×1 convs: never weighted, whatever the kind
        layers: list[nn.Module] = []
        width_in = self.dims
        for _ in range(encoder_depth):
            layers += [point(width_in, encoder_width, 1), ACTIVATIONS[activation]()]
            width_in = encoder_width
        layers.append(point(width_in, filters, 1))
        self.encoder = nn.Sequential(*layers)
        self.project = point(filters, out_channels, 1) if project else None
        self.reset_encoder()

    def reset_encoder(self) -> None:
        """Default-initialise the MLP, then set the last layer's bias to the gate's pre-image of 1
        (``sigmoid``: 0, i.e. a gate of 0.5).  Models call this after a whole-model init (such as
        :func:`wconv.models.init.kaiming_init_`, which would zero that bias and shut the gate)."""
        for module in self.encoder:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()  # type: ignore[operator]
        last = self.encoder[-1]
        with torch.no_grad():
            last.bias.fill_(0.0 if self.gate_name == "sigmoid" else 1.0)  # type: ignore[operator]

    def gate(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """The gate ``g(C)`` of shape ``(1, filters, *shape)`` (independent of the batch)."""
        grid = coordinate_grid(shape, like.device, like.dtype)
        return GATES[self.gate_name](self.encoder(grid))

    def forward(self, x: Tensor) -> Tensor:
        features = self.conv(x)
        out = features * self.gate(tuple(features.shape[2:]), features)
        return self.project(out) if self.project is not None else out

    def extra_repr(self) -> str:
        return f"dims={self.dims}, gate={self.gate_name}, project={self.project is not None}"


class CoordConv(nn.Module):
    """``y = conv_k([x, C])``: the normalised coordinate channels (one per spatial axis, in
    [-1, 1]) concatenated to the input of a 'same' convolution (CoordConv, Liu et al. 2018).

    Shapes: input ``(N, in_channels, *spatial)``, output ``(N, out_channels, *spatial)``; the
    convolution sees ``in_channels + conv.dims`` channels.

    Examples:
        >>> import torch
        >>> from wconv.nn import CoordConv, conv_factory
        >>> layer = CoordConv(1, 4, 5, conv=conv_factory(dims=1))
        >>> layer(torch.randn(2, 1, 50)).shape
        torch.Size([2, 4, 50])
        >>> layer.conv.in_channels
        2
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        conv: ConvFactory | None = None,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        conv = conv if conv is not None else ConvFactory()
        if kernel_size % 2 == 0:
            raise ValueError(f"CoordConv: kernel_size {kernel_size} must be odd for 'same' padding")
        self.dims = conv.dims
        self.conv = conv(
            in_channels + self.dims,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=bias,
            padding_mode=padding_mode,
        )

    def forward(self, x: Tensor) -> Tensor:
        grid = coordinate_grid(tuple(x.shape[2:]), x.device, x.dtype)
        return self.conv(torch.cat([x, grid.expand(x.shape[0], *grid.shape[1:])], dim=1))
