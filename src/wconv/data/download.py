"""Fetching and unpacking the real data sets, with the standard library only.

``fetch`` downloads into ``<name>.part`` beside the destination, resumes a partial file with an
HTTP ``Range`` request, retries network failures and 5xx answers with exponential backoff,
verifies the md5, and only then renames the file into place, so the destination either is a
verified archive or does not exist. ``safe_extract`` refuses members that would land outside the
target folder (absolute paths, ``..``, escaping links, devices) before unpacking, and unpacks into
a temporary folder that is renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import lzma
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import wconv

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".part"
_CHUNK = 1 << 20
# Answers worth another try: server trouble, time-outs and rate limits.
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(OSError):
    """The archive could not be fetched (network or HTTP error) after all retries."""


class ChecksumError(ValueError):
    """A file's md5 differs from the configured checksum."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction folder."""


class _ShortRead(Exception):
    """The connection closed before the announced number of bytes arrived."""


@dataclass(frozen=True)
class Source:
    """Where one archive comes from. ``archive`` (a local file or an unpacked folder) wins over
    ``url``; ``where`` is the params key shown in messages, e.g. ``data.source.train``."""

    url: str | None
    md5: str | None
    archive: str | None = None
    retries: int = 3
    backoff: float = 2.0
    timeout: float = 60.0
    where: str = "data.source"

    @classmethod
    def from_cfg(cls, part: Mapping[str, Any], network: Mapping[str, Any], where: str) -> Source:
        return cls(
            url=part["url"],
            md5=part["md5"],
            archive=part["archive"],
            retries=network["retries"],
            backoff=network["backoff"],
            timeout=network["timeout"],
            where=where,
        )


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def ensure_extracted(source: Source, raw_dir: Path, filename: str) -> Path:
    """Return a folder holding the unpacked archive: ``source.archive`` itself when it is a folder,
    else ``raw_dir/<stem>-<md5 prefix>``, fetched and unpacked on first use. Naming the folder by
    the checksum means a different archive never reuses stale files."""
    if source.archive and Path(source.archive).expanduser().is_dir():
        return Path(source.archive).expanduser()
    stem = filename.split(".", 1)[0]
    target = raw_dir / f"{stem}-{(source.md5 or 'unverified')[:8]}"
    if target.is_dir():
        return target
    archive = fetch(source, raw_dir / filename)
    log.info("unpacking %s into %s", archive, target)
    safe_extract(archive, target)
    return target


def fetch(source: Source, dest: Path, *, progress: bool | None = None) -> Path:
    """Return a verified archive: ``source.archive`` if given, else ``dest`` (downloaded from
    ``source.url`` if absent). ``progress``: show a bar (default: only if stderr is a terminal)."""
    if source.archive:
        path = Path(source.archive).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{source.where}.archive {path} does not exist; fix the path, or remove it to "
                f"download from {source.url}"
            )
        _verify(path, source, delete=False)
        return path
    if dest.is_file():
        _verify(dest, source, delete=False)
        return dest
    if not source.url:
        raise ValueError(f"no download URL for {dest.name}; set {source.where}.url or .archive")
    created = not dest.parent.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PARTIAL_SUFFIX)
    log.info("downloading %s from %s", dest.name, source.url)
    try:
        _download(source, part, dest.name, sys.stderr.isatty() if progress is None else progress)
        _verify(part, source, delete=True)
        os.replace(part, dest)
    except BaseException:
        if created:
            # Leave no empty folder behind; a kept .part file (for resuming) makes this a no-op.
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
        raise
    return dest


def _verify(path: Path, source: Source, *, delete: bool) -> None:
    if source.md5 is None:
        log.warning("no checksum configured for %s; it is used unverified", path)
        return
    actual = md5sum(path)
    if actual != source.md5.lower():
        origin = source.url if delete else str(path)
        if delete:
            path.unlink()
        action = "the download was deleted; " if delete else f"delete {path} or "
        raise ChecksumError(
            f"checksum mismatch for {path.name.removesuffix(PARTIAL_SUFFIX)} from {origin}: "
            f"md5 {actual}, expected {source.md5}; {action}fix {source.where}.url / "
            f"{source.where}.md5, or set {source.where}.archive to a verified copy"
        )


def _download(source: Source, part: Path, name: str, progress: bool) -> None:
    assert source.url is not None
    attempt = 0
    while True:
        try:
            _transfer(source.url, part, source.timeout, name, progress)
            return
        except urllib.error.HTTPError as e:
            if e.code not in _RETRY_STATUS:
                raise DownloadError(
                    f"HTTP {e.code} {e.reason} for {source.url}; fix {source.where}.url, or "
                    f"download {name} yourself and set {source.where}.archive to its path"
                ) from e
            error: BaseException = e
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            ConnectionError,
            TimeoutError,
            _ShortRead,
        ) as e:
            error = e
        attempt += 1
        if attempt > source.retries:
            reason = getattr(error, "reason", None) or error
            raise DownloadError(
                f"could not download {name} from {source.url} after {attempt} attempt(s): "
                f"{reason}; check the network, set {source.where}.url to a mirror, or download "
                f"the file yourself and set {source.where}.archive to its path"
            ) from error
        delay = source.backoff * 2 ** (attempt - 1)
        log.warning("download of %s failed (%s); retry %d in %.1f s", name, error, attempt, delay)
        time.sleep(delay)


def _transfer(url: str, part: Path, timeout: float, name: str, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"wconv/{wconv.__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # The partial file already holds every byte the server has; the checksum decides.
            return
        raise
    with response:
        if have and response.status == 206 and _range_start(response.headers) == have:
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server ignored or misread the range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, mode) as f, _bar(total, have, name, progress) as bar:
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            f.flush()
            os.fsync(f.fileno())
    size = part.stat().st_size
    if total is not None and size < total:
        raise _ShortRead(f"connection closed after {size} of {total} bytes")


def _range_start(headers: Any) -> int | None:
    match = re.match(r"bytes (\d+)-", headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _bar(total: int | None, initial: int, name: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="B", unit_scale=True, file=sys.stderr)


class _NoBar:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def safe_extract(archive: Path, target: Path) -> Path:
    """Unpack a tar or zip ``archive`` into the new folder ``target`` after checking every member;
    raises ``UnsafeArchiveError`` (and writes nothing) if one would escape ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    problem = _name_problem(info.filename)
                    if problem is None and stat.S_ISLNK(info.external_attr >> 16):
                        problem = "is a symbolic link (links are not accepted in zip archives)"
                    _refuse_if(problem, archive, info.filename)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _refuse_if(_tar_problem(member), archive, member.name)
                # PEP 706's "data" filter repeats these checks and drops unsafe permissions.
                tf.extractall(tmp, filter="data")
        else:
            raise ValueError(
                f"{archive} is neither a tar nor a zip archive; delete it and download it again"
            )
        os.replace(tmp, target)
    except (EOFError, tarfile.ReadError, zipfile.BadZipFile, zlib.error, lzma.LZMAError) as err:
        # A checksum only proves the file is the one that was hashed, not that it is whole.
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(
            f"cannot unpack {archive}: it is truncated or damaged ({type(err).__name__}: {err}); "
            "delete it and download it again"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _refuse_if(problem: str | None, archive: Path, member: str) -> None:
    if problem is not None:
        raise UnsafeArchiveError(
            f"refusing to unpack {archive.name}: member {member!r} {problem}; the archive is "
            "damaged or malicious, delete it and download it again from the official source"
        )


def _name_problem(name: str) -> str | None:
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "has an absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "climbs out of the target folder with '..'"
    return None


def _tar_problem(member: tarfile.TarInfo) -> str | None:
    problem = _name_problem(member.name)
    if problem is not None:
        return problem
    if member.ischr() or member.isblk() or member.isfifo():
        return "is a device or FIFO"
    if member.issym() or member.islnk():
        # Symlink targets are relative to the link's folder, hard-link targets to the archive root.
        base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
        resolved = os.path.normpath(str(base / member.linkname))
        if member.linkname.startswith("/") or resolved == ".." or resolved.startswith("../"):
            return f"is a link to {member.linkname!r}, outside the target folder"
    return None
