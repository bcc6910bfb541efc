"""Helpers for the data tests: a real HTTP server on 127.0.0.1 with Range support and scripted
failures, and small archives in the exact layouts of the CIFAR-100 and DIV2K releases."""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


class RangeServer:
    """Serves ``files`` (URL path -> bytes). ``failures[path]``: statuses answered (in order)
    before the file is served; ``cut[path]``: the next response for ``path`` announces the full
    length but closes after that many body bytes. ``requests`` logs (path, Range header)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[int]] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> RangeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        server: RangeServer = self.server.owner  # type: ignore[attr-defined]
        server.requests.append((self.path, self.headers.get("Range")))
        pending = server.failures.get(self.path)
        if pending:
            self.send_error(pending.pop(0))
            return
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = server.cut.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()
        self.close_connection = True


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cifar100_archive(
    path: Path,
    train_per_class: int = 5,
    test_per_class: int = 2,
    seed: int = 0,
    compresslevel: int = 9,
) -> dict[str, np.ndarray]:
    """Write ``cifar-100-python.tar.gz`` in the release layout (pickled dicts with bytes keys,
    protocol 2, data rows of 3072 uint8 values in R, G, B planes) and return its arrays.
    ``train_per_class=500, test_per_class=100`` is the full-size release (50,000 + 10,000)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    members: dict[str, bytes] = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(100), per_class))
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        batch = {
            b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
            b"batch_label": f"{split} batch 1 of 1".encode(),
            b"fine_labels": labels.tolist(),
            b"coarse_labels": (labels // 5).tolist(),
            b"data": data,
        }
        members[f"cifar-100-python/{split}"] = pickle.dumps(batch, protocol=2)
        out[f"{split}_images"] = data.reshape(-1, 3, 32, 32)
        out[f"{split}_labels"] = labels
    meta = {
        b"fine_label_names": [f"class{i:03d}".encode() for i in range(100)],
        b"coarse_label_names": [f"super{i:02d}".encode() for i in range(20)],
    }
    members["cifar-100-python/meta"] = pickle.dumps(meta, protocol=2)
    with tarfile.open(path, "w:gz", compresslevel=compresslevel) as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return out


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def div2k_zip(
    path: Path, folder: str, numbers: range, shape: tuple[int, int] = (72, 90), seed: int = 0
) -> dict[str, np.ndarray]:
    """Write a zip like ``DIV2K_train_HR.zip`` (``<folder>/0001.png`` ...) of small RGB PNGs with
    smooth content plus texture; return the images by name."""
    rng = np.random.default_rng(seed)
    images = {}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{folder}/", b"")
        for number in numbers:
            name = f"{number:04d}"
            image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            images[name] = image
            zf.writestr(f"{folder}/{name}.png", png_bytes(image))
    return images


def photo_like(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A uint8 RGB image with smooth gradients, edges and mild noise: it compresses as PNG
    roughly like a photograph (a few MB at DIV2K's 2040 px), unlike pure noise."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.empty((h, w, 3), dtype=np.float32)
    for c in range(3):
        fy, fx, phase = [*rng.uniform(1, 6, 2).tolist(), float(rng.uniform(0, 6.3))]
        image[..., c] = 128 + 80 * np.sin(2 * np.pi * (fy * y / h + fx * x / w) + phase)
    blocks = rng.integers(0, 2, (h // 64 + 1, w // 64 + 1), dtype=np.uint8).astype(np.float32)
    image += 30 * np.kron(blocks, np.ones((64, 64), np.float32))[:h, :w, None]
    image += rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def div2k_fullsize_zip(
    path: Path, folder: str, numbers: range, shape: tuple[int, int] = (1356, 2040), seed: int = 0
) -> None:
    """Write a zip like ``DIV2K_train_HR.zip`` at DIV2K's resolution (2040 px on the long side;
    the release's images are 2040 wide and about 1356 high) of :func:`photo_like` PNGs, stored
    (PNG is already compressed) as in the release."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{folder}/", b"")
        for number in numbers:
            buffer = io.BytesIO()
            Image.fromarray(photo_like(rng, shape)).save(buffer, format="PNG", compress_level=1)
            zf.writestr(f"{folder}/{number:04d}.png", buffer.getvalue())


def tar_with(path: Path, name: str, *, link_to: str | None = None, hard: bool = False) -> Path:
    """A tar.gz with one harmless file plus member ``name`` (a file, or a link to ``link_to``)."""
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("folder/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        if link_to is None:
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        else:
            info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
            info.linkname = link_to
            tf.addfile(info)
    return path


def zip_with(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("folder/ok.txt", b"ok")
        zf.writestr(zipfile.ZipInfo(name), b"evil")
    return path
