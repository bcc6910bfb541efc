"""DeviceBatches: order and augmentation reproducible per (seed, epoch), paired augmentation,
normalisation, dtypes and layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wconv.data.loader import DeviceBatches

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
N, C, H, W = 50, 3, 8, 10


def _images(n: int = N) -> torch.Tensor:
    # Pixel values encode the sample index so a batch row can be traced back to its source.
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, C, H, W), generator=g, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n) % 256
    return images


def _epoch(batches: DeviceBatches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.cpu(), y.cpu()) for x, y in batches]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_one_epoch_covers_every_sample_once_as_float32(device):
    images, labels = _images(), torch.arange(N) % 7
    batches = DeviceBatches(images, labels, 16, shuffle=True, seed=3, device=device)
    assert len(batches) == 4
    seen = []
    for x, y in batches:
        assert x.dtype == torch.float32 and x.device.type == device and y.dtype == torch.int64
        assert x.min() >= 0.0 and x.max() <= 1.0
        index = (x[:, 0, 0, 0] * 255).round().long().cpu()
        assert torch.equal(y.cpu(), labels[index])  # labels stay with their images
        assert torch.allclose(x.cpu(), images[index].float() / 255)
        seen.append(index)
    order = torch.cat(seen)
    assert sorted(order.tolist()) == list(range(N))
    assert order.tolist() != list(range(N))  # shuffled


def test_order_and_augmentation_depend_only_on_seed_and_epoch():
    images, labels = _images(), torch.arange(N)
    kw = {"shuffle": True, "device": "cpu", "flip": True, "crop_padding": 2}
    first = DeviceBatches(images, labels, 8, seed=11, **kw)
    epochs = []
    for epoch in range(3):
        first.set_epoch(epoch)
        epochs.append(_epoch(first))
    assert not _same(epochs[0], epochs[1]) and not _same(epochs[1], epochs[2])
    # A fresh loader (a resumed run) at epoch 2 reproduces epoch 2 exactly.
    resumed = DeviceBatches(images, labels, 8, seed=11, **kw)
    resumed.set_epoch(2)
    assert _same(_epoch(resumed), epochs[2])
    # Iterating again without set_epoch repeats the same epoch.
    assert _same(_epoch(resumed), epochs[2])
    other_seed = DeviceBatches(images, labels, 8, seed=12, **kw)
    assert not _same(_epoch(other_seed), epochs[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_equal_cpu_batches():
    images, labels = _images(), torch.arange(N)
    kw = {"shuffle": True, "seed": 5, "flip": True, "crop_padding": 3}
    cpu = DeviceBatches(images, labels, 16, device="cpu", **kw)
    gpu = DeviceBatches(images, labels, 16, device="cuda", **kw)
    assert _same(_epoch(cpu), _epoch(gpu))


def test_flip_mirrors_about_half_of_the_images():
    images = _images(400)
    batches = DeviceBatches(
        images,
        torch.zeros(400, dtype=torch.long),
        64,
        shuffle=False,
        seed=0,
        device="cpu",
        flip=True,
    )
    x = torch.cat([xb for xb, _ in batches])
    original = images.float() / 255
    flipped = torch.tensor([torch.equal(a, b.flip(2)) for a, b in zip(x, original, strict=True)])
    kept = torch.tensor([torch.equal(a, b) for a, b in zip(x, original, strict=True)])
    assert torch.all(flipped ^ kept)
    assert 150 < flipped.sum() < 250


def test_restoration_pairs_get_identical_flip_and_crop():
    clean = _images()
    degraded = clean.float() / 255  # the same content, so identical transforms keep x == y
    kw = {"shuffle": True, "seed": 1, "device": "cpu"}
    augmented = DeviceBatches(degraded, clean, 10, flip=True, crop_padding=3, **kw)
    plain = DeviceBatches(degraded, clean, 10, **kw)
    changed = 0
    for (x, y), (x0, y0) in zip(augmented, plain, strict=True):
        assert x.dtype == y.dtype == y0.dtype == torch.float32
        assert torch.equal(x, y)
        changed += int(not torch.equal(x, x0))
    assert changed == len(plain)  # every batch had some flip or shift


def test_random_crop_is_a_shift_with_zero_padding():
    images = _images(64)
    pad = 2
    batches = DeviceBatches(
        images,
        torch.zeros(64, dtype=torch.long),
        64,
        shuffle=False,
        seed=4,
        device="cpu",
        crop_padding=pad,
    )
    ((x, _),) = list(batches)
    padded = F.pad(images.float() / 255, (pad, pad, pad, pad))
    offsets = set()
    for i in range(64):
        candidates = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(x[i], padded[i, :, dy : dy + H, dx : dx + W])
        ]
        assert candidates, f"sample {i} is not a padded crop of its image"
        offsets.update(candidates)
    assert len(offsets) > 10  # offsets really vary over the (2p+1)^2 positions


@pytest.mark.parametrize("pad", [0, 3])
def test_crop_and_flip_equal_flipping_then_cropping_the_padded_image(pad):
    """Every sample is its own image, mirrored where its flip says so, zero-padded and cut at its
    drawn offset: the batched gathers give exactly the per-sample definition."""
    images = _images(40)
    kw = {"shuffle": True, "seed": 9, "device": "cpu", "flip": True, "crop_padding": pad}
    batches = DeviceBatches(images, torch.zeros(40, dtype=torch.long), 16, **kw)
    batches.set_epoch(3)
    draws = batches.draws()
    x = torch.cat([xb for xb, _ in batches])
    for row, (i, flip, (top, left)) in enumerate(
        zip(draws.order, draws.flips, draws.offsets, strict=True)
    ):
        image = images[i].flip(2) if flip else images[i]
        padded = F.pad(image.float() / 255, (pad, pad, pad, pad))
        assert torch.equal(x[row], padded[:, top : top + H, left : left + W])
    assert draws.flips.any() and not draws.flips.all()


def test_normalisation_and_channels_last():
    images = _images()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    batches = DeviceBatches(
        images,
        torch.arange(N),
        32,
        shuffle=False,
        seed=0,
        device="cpu",
        mean=mean,
        std=std,
        channels_last=True,
    )
    x, _ = next(iter(batches))
    assert x.is_contiguous(memory_format=torch.channels_last)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(x * s + m, images[:32].float() / 255)


def test_drop_last_and_lengths():
    images, labels = _images(), torch.arange(N)
    assert len(DeviceBatches(images, labels, 16, shuffle=False, seed=0, device="cpu")) == 4
    dropping = DeviceBatches(images, labels, 16, shuffle=True, seed=0, device="cpu", drop_last=True)
    assert len(dropping) == 3 and [len(y) for _, y in dropping] == [16, 16, 16]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets": torch.arange(N - 1)}, "as many targets as inputs"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"crop_padding": -1}, "crop_padding must be >= 0"),
        ({"mean": (0.5, 0.5, 0.5)}, "give both mean and std"),
        ({"mean": (0.5,), "std": (0.2,)}, "mean and std need 3 values"),
        ({"targets": torch.zeros(N, C, H + 1, W, dtype=torch.uint8)}, "same height and width"),
        ({"targets": torch.rand(N)}, "integer labels"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    args = {"targets": torch.arange(N), "batch_size": 8, **kwargs}
    targets, batch_size = args.pop("targets"), args.pop("batch_size")
    with pytest.raises(ValueError, match=message):
        DeviceBatches(_images(), targets, batch_size, shuffle=False, seed=0, device="cpu", **args)


def _reference_batch(images: torch.Tensor, draws, part: slice, pad: int) -> torch.Tensor:
    # The unfused definition: select, mirror the flagged rows, zero-pad, slice each crop.
    x = images[draws.order[part]].float() / 255
    flips = draws.flips[part].view(-1, 1, 1, 1)
    x = F.pad(torch.where(flips, x.flip(3), x), (pad, pad, pad, pad))
    crops = [
        img[:, top : top + H, left : left + W]
        for img, (top, left) in zip(x, draws.offsets[part].tolist(), strict=True)
    ]
    return torch.stack(crops)


def test_epoch_draws_are_pinned_by_seed_and_epoch_across_a_resume():
    images, labels = _images(), torch.arange(N)
    kw = {"shuffle": True, "device": "cpu", "flip": True, "crop_padding": 2, "seed": 7}
    run = DeviceBatches(images, labels, 8, **kw)
    draws, batches = {}, {}
    for epoch in range(3):  # the engine calls set_epoch(epoch) before iterating every epoch
        run.set_epoch(epoch)
        draws[epoch], batches[epoch] = run.draws(), _epoch(run)
    assert not torch.equal(draws[0].order, draws[1].order)
    assert not torch.equal(draws[0].flips, draws[1].flips)
    assert not torch.equal(draws[0].offsets, draws[1].offsets)
    # A run resumed at epoch 1 builds a fresh loader and jumps straight to that epoch number.
    resumed = DeviceBatches(images, labels, 8, **kw)
    resumed.set_epoch(1)
    again = resumed.draws()
    assert torch.equal(again.order, draws[1].order)
    assert torch.equal(again.flips, draws[1].flips)
    assert torch.equal(again.offsets, draws[1].offsets)
    assert _same(_epoch(resumed), batches[1])
    # The yielded batches are exactly the drawn order, flips and crops (flip fused into the crop).
    for b, (x, y) in enumerate(batches[1]):
        part = slice(b * 8, (b + 1) * 8)
        assert torch.equal(y, labels[draws[1].order[part]])
        torch.testing.assert_close(x, _reference_batch(images, draws[1], part, 2), rtol=0, atol=0)


def test_fused_flip_without_padding_mirrors_the_flagged_rows():
    images = _images()
    batches = DeviceBatches(
        images, torch.arange(N), N, shuffle=True, seed=2, device="cpu", flip=True
    )
    draws = batches.draws()
    ((x, _),) = list(batches)
    torch.testing.assert_close(x, _reference_batch(images, draws, slice(0, N), 0), rtol=0, atol=0)
    assert 0 < int(draws.flips.sum()) < N


def test_pad_last_batch_gives_static_shapes_and_wraps_the_epoch_order():
    images, labels = _images(), torch.arange(N)
    padded = DeviceBatches(images, labels, 16, shuffle=True, seed=0, device="cpu", last_batch="pad")
    assert len(padded) == 4
    seen = torch.cat([y for _, y in padded])
    assert [len(y) for _, y in padded] == [16] * 4
    order = padded.draws().order
    assert torch.equal(seen, order) and len(order) == 64
    assert sorted(order[:N].tolist()) == list(range(N))  # every sample once ...
    assert torch.equal(order[N:], order[: 64 - N])  # ... plus the first 14 again
    dropped = DeviceBatches(
        images, labels, 16, shuffle=True, seed=0, device="cpu", last_batch="drop"
    )
    assert [len(y) for _, y in dropped] == [16] * 3
    assert torch.equal(torch.cat([y for _, y in dropped]), order[:48])  # same draws, tail cut


def test_last_batch_option_is_checked():
    images, labels = _images(), torch.arange(N)
    with pytest.raises(ValueError, match="last_batch must be one of"):
        DeviceBatches(images, labels, 8, shuffle=False, seed=0, device="cpu", last_batch="wrap")
    with pytest.raises(ValueError, match="contradicts"):
        DeviceBatches(
            images, labels, 8, shuffle=False, seed=0, device="cpu", drop_last=True, last_batch="pad"
        )
