"""Time and peak memory of `wconv data prepare` on full-size CIFAR-100 and real-resolution DIV2K.

No machine here reaches the data hosts, so the archives are generated in the release formats by
tests/data_fixtures.py (synthetic pixels, real layouts and sizes) and served from 127.0.0.1 with
Range support; `wconv data prepare` then downloads, verifies, unpacks and splits them exactly as it
would the real files. Each prepare runs in its own process, measured with ``os.wait4`` (wall
seconds and peak RSS of that process alone).

CIFAR-100 is full size (50,000 + 10,000 images). DIV2K is 2040×1356 PNGs with the paper preset's
settings (params.yaml), at two subset sizes, and linearly extrapolated to the release's 800 + 100
images (prepare is a per-image pass, so CPU time and the per-image part of memory scale with the
count; wall time on a shared machine is too noisy to extrapolate).

    .venv/bin/python benchmarks/prepare_fullsize.py                 # both data sets
    .venv/bin/python benchmarks/prepare_fullsize.py --div2k 40 10 --div2k 80 10 --skip-cifar
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from data_fixtures import (  # noqa: E402 - test tooling lives in tests/, not in the package
    RangeServer,
    cifar100_archive,
    div2k_fullsize_zip,
    md5_of,
)

DIV2K_RELEASE = (800, 100)


def measured(command: list[str]) -> dict[str, float]:
    """Run ``command``; its wall seconds and peak RSS (MiB), failing loudly if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    out, err = process.stdout.read().decode(), process.stderr.read().decode()  # type: ignore[union-attr]
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{out[-2000:]}\n{err[-2000:]}")
    return {
        "seconds": round(wall, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "folder": out.strip().splitlines()[-1],
    }


def prepared_mib(root: Path) -> float:
    """Everything prepare wrote under ``root`` except the downloaded and unpacked ``raw/``
    (the split folder holds indices only; the image pool lies in its parent)."""
    files = [p for p in root.rglob("*") if p.is_file() and "raw" not in p.relative_to(root).parts]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


def wconv(*args: str) -> list[str]:
    return [sys.executable, "-m", "wconv.cli", *args]


def bench_cifar(work: Path) -> dict[str, Any]:
    archive = work / "cifar-100-python.tar.gz"
    start = time.perf_counter()
    cifar100_archive(archive, train_per_class=500, test_per_class=100, compresslevel=1)
    generated = time.perf_counter() - start
    root = work / "cifar-data"
    with RangeServer() as server:
        server.files["/kriz/cifar-100-python.tar.gz"] = archive.read_bytes()
        url = server.url("/kriz/cifar-100-python.tar.gz")
        result = measured(
            wconv("data", "prepare", "cifar100", "--root", str(root),
                  "--set", f"source.url={url}", "--set", f"source.md5={md5_of(archive)}")
        )  # fmt: skip
    result.update(
        images="50,000 + 10,000",
        archive_mib=round(archive.stat().st_size / 2**20, 1),
        prepared_mib=prepared_mib(root),
        generate_seconds=round(generated, 1),
    )
    del result["folder"]
    return result


def bench_div2k(work: Path, train: int, valid: int) -> dict[str, Any]:
    folder = work / f"div2k-{train}-{valid}"
    folder.mkdir()
    zips = {"train": folder / "DIV2K_train_HR.zip", "valid": folder / "DIV2K_valid_HR.zip"}
    start = time.perf_counter()
    div2k_fullsize_zip(zips["train"], "DIV2K_train_HR", range(1, train + 1), seed=1)
    div2k_fullsize_zip(zips["valid"], "DIV2K_valid_HR", range(801, 801 + valid), seed=2)
    generated = time.perf_counter() - start
    sets = []
    with RangeServer() as server:
        for part, path in zips.items():
            server.files[f"/div2k/{path.name}"] = path.read_bytes()
            count = train if part == "train" else valid
            sets += ["--set", f"source.{part}.url={server.url(f'/div2k/{path.name}')}",
                     "--set", f"source.{part}.md5={md5_of(path)}",
                     "--set", f"source.{part}.count={count}"]  # fmt: skip
        result = measured(
            wconv("data", "prepare", "--params", str(REPO / "params.yaml"), "--preset", "paper",
                  "--study", "den", "--root", str(folder / "data"), *sets)
        )  # fmt: skip
    result.update(
        images=f"{train} + {valid}",
        archive_mib=round(sum(p.stat().st_size for p in zips.values()) / 2**20, 1),
        prepared_mib=prepared_mib(folder / "data"),
        generate_seconds=round(generated, 1),
    )
    del result["folder"]
    return result


def extrapolate(rows: list[tuple[int, dict[str, Any]]], key: str, images: int) -> float:
    """Linear fit ``a + b·images`` through the two largest measurements, evaluated at ``images``."""
    (n0, r0), (n1, r1) = rows[-2], rows[-1]
    slope = (r1[key] - r0[key]) / (n1 - n0)
    return round(r1[key] + slope * (images - n1), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--skip-cifar", action="store_true")
    parser.add_argument(
        "--div2k", nargs=2, type=int, action="append", metavar=("TRAIN", "VALID"),
        help="a DIV2K subset size; give two or more (default: 20 5 and 40 10)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = args.div2k or [[20, 5], [40, 10]]
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        work = Path(scratch)
        report: dict[str, Any] = {}
        if not args.skip_cifar:
            report["cifar100"] = bench_cifar(work)
            print(json.dumps({"cifar100": report["cifar100"]}), flush=True)
        rows = []
        for train, valid in sorted(sizes):
            row = bench_div2k(work, train, valid)
            rows.append((train + valid, row))
            print(json.dumps({"div2k": row}), flush=True)
        report["div2k"] = [row for _, row in rows]
        if len(rows) >= 2:
            total = sum(DIV2K_RELEASE)
            report["div2k_800_100_extrapolated"] = {
                key: extrapolate(rows, key, total)
                for key in ("cpu_seconds", "peak_rss_mib", "prepared_mib", "archive_mib")
            }
            print(json.dumps({"div2k_800_100": report["div2k_800_100_extrapolated"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
