"""Batches from a whole split kept on the training device (the airbench approach: no DataLoader
workers, no per-sample Python; images stay uint8 on the device and are converted per batch).

Randomness (the epoch's order and every augmentation draw) comes from one CPU
``torch.Generator`` seeded from ``(seed, epoch)``, so an epoch's batches are the same on CPU and
GPU and a run resumed at epoch ``e`` sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F


class DeviceBatches:
    """Iterate ``(x, y)`` batches of a split held on ``device``.

    ``inputs``: uint8 images (N, C, H, W) (converted to [0, 1]) or float32 degraded images.
    ``targets``: int64 labels (N,) (classification) or uint8 / float clean images (N, C, H, W)
    (restoration; returned as float32 on [0, 1]). Per batch, on the device: random horizontal
    flip (``flip``) and random crop after zero-padding by ``crop_padding`` pixels, identical for an
    input and its target image; then ``(x - mean) / std`` on the inputs only; float32 output,
    optionally ``channels_last``.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        device: torch.device | str,
        flip: bool = False,
        crop_padding: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        drop_last: bool = False,
        channels_last: bool = False,
    ) -> None:
        if inputs.ndim != 4:
            raise ValueError(f"inputs must be images (N, C, H, W), got shape {tuple(inputs.shape)}")
        if len(targets) != len(inputs) or len(inputs) == 0:
            raise ValueError(
                f"need as many targets as inputs (at least one), got {len(inputs)} inputs and "
                f"{len(targets)} targets"
            )
        self.paired = targets.ndim == 4
        if self.paired and targets.shape[2:] != inputs.shape[2:]:
            raise ValueError(
                f"restoration targets {tuple(targets.shape)} and inputs {tuple(inputs.shape)} "
                "must have the same height and width"
            )
        if not self.paired and (targets.ndim != 1 or targets.is_floating_point()):
            raise ValueError("classification targets must be integer labels of shape (N,)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std (or neither) for normalisation")
        self.device = torch.device(device)
        self.inputs = inputs.to(self.device)
        self.targets = targets.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.flip = flip
        self.crop_padding = crop_padding
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.mean = self.std = None
        if mean is not None and std is not None:
            channels = inputs.shape[1]
            if len(mean) != channels or len(std) != channels or min(std) <= 0:
                raise ValueError(
                    f"mean and std need {channels} values (std > 0), got {list(mean)}, {list(std)}"
                )
            shape = (1, channels, 1, 1)
            self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(shape)
            self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(shape)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentations the next iteration produces."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.inputs)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _generator(self) -> torch.Generator:
        # SeedSequence mixes (seed, epoch) into one well-spread 63-bit seed.
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = self._generator()
        n = len(self.inputs)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            idx_dev = idx.to(self.device, non_blocking=True)
            x = _to_float(self.inputs[idx_dev])
            y = _to_float(self.targets[idx_dev]) if self.paired else self.targets[idx_dev]
            x, y = self._augment(x, y, len(idx), gen)
            if self.mean is not None:
                x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
                if self.paired:
                    y = y.contiguous(memory_format=torch.channels_last)
            yield x, y

    def _augment(
        self, x: torch.Tensor, y: torch.Tensor, size: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Draws happen every batch (whether or not a transform is on) in a fixed order, so the
        # stream of random numbers does not depend on which augmentations are enabled.
        pad = self.crop_padding
        flips = torch.rand(size, generator=gen) < 0.5
        offsets = torch.randint(0, 2 * pad + 1, (size, 2), generator=gen)
        if self.flip:
            mask = flips.to(self.device, non_blocking=True).view(-1, 1, 1, 1)
            x = torch.where(mask, x.flip(3), x)
            if self.paired:
                y = torch.where(mask, y.flip(3), y)
        if pad > 0:
            offsets = offsets.to(self.device, non_blocking=True)
            x = _random_crop(x, offsets, pad)
            if self.paired:
                y = _random_crop(y, offsets, pad)
        return x, y


def _to_float(t: torch.Tensor) -> torch.Tensor:
    if t.dtype == torch.uint8:
        return t.to(torch.float32).div_(255.0)
    return t.to(torch.float32)


def _random_crop(x: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad by ``pad`` and cut each image back to its size at its own (top, left) offset,
    with one gather for the whole batch."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (offsets[:, 0:1] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (offsets[:, 1:2] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]
