"""Downloading over real HTTP (a local server) and safe unpacking of tar and zip archives."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from data_fixtures import RangeServer, tar_with, zip_with
from wconv.data.download import (
    PARTIAL_SUFFIX,
    ChecksumError,
    DownloadError,
    Source,
    UnsafeArchiveError,
    ensure_extracted,
    fetch,
    safe_extract,
)

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB, several read chunks
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with RangeServer() as s:
        s.files["/files/archive.bin"] = PAYLOAD
        yield s


def _source(server: RangeServer, md5: str | None = MD5, **kw) -> Source:
    return Source(url=server.url("/files/archive.bin"), md5=md5, retries=2, backoff=0.0, **kw)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_full_download_is_verified_and_placed(server, tmp_path):
    dest = tmp_path / "raw" / "archive.bin"
    assert fetch(_source(server), dest, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _files(tmp_path) == [dest]  # no partial or temporary file left
    assert server.requests == [("/files/archive.bin", None)]
    # A second call finds the verified file and does not touch the network.
    fetch(_source(server), dest, progress=False)
    assert len(server.requests) == 1


def test_truncated_partial_file_is_resumed_with_a_range_request(server, tmp_path):
    dest = tmp_path / "archive.bin"
    part = dest.with_name(dest.name + PARTIAL_SUFFIX)
    part.write_bytes(PAYLOAD[:300_001])
    fetch(_source(server), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not part.exists()
    assert server.requests == [("/files/archive.bin", "bytes=300001-")]


def test_connection_dropped_mid_transfer_resumes_on_retry(server, tmp_path):
    server.cut["/files/archive.bin"] = 123_456
    dest = tmp_path / "archive.bin"
    fetch(_source(server), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [
        ("/files/archive.bin", None),
        ("/files/archive.bin", "bytes=123456-"),
    ]


def test_complete_partial_file_answered_416_is_verified_and_kept(server, tmp_path):
    dest = tmp_path / "archive.bin"
    dest.with_name(dest.name + PARTIAL_SUFFIX).write_bytes(PAYLOAD)
    fetch(_source(server), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/files/archive.bin", f"bytes={len(PAYLOAD)}-")]


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    root = tmp_path / "data"
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as info:
        fetch(_source(server, md5=wrong), root / "raw" / "archive.bin", progress=False)
    message = str(info.value)
    assert "checksum mismatch" in message and MD5 in message and wrong in message
    assert "data.source.md5" in message and "\n" not in message
    assert _files(tmp_path) == []


def test_server_error_is_retried_then_reported(server, tmp_path):
    server.failures["/files/archive.bin"] = [500] * 10
    with pytest.raises(DownloadError) as info:
        fetch(_source(server), tmp_path / "archive.bin", progress=False)
    assert len(server.requests) == 3  # the first try and two retries
    message = str(info.value)
    assert "after 3 attempt(s)" in message and "Internal Server Error" in message
    assert "data.source.archive" in message


def test_server_error_then_success(server, tmp_path):
    server.failures["/files/archive.bin"] = [503, 500]
    dest = tmp_path / "archive.bin"
    fetch(_source(server), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD and len(server.requests) == 3


def test_not_found_is_not_retried(server, tmp_path):
    source = Source(url=server.url("/missing.bin"), md5=MD5, retries=5, backoff=0.0)
    with pytest.raises(DownloadError, match=r"HTTP 404 .* fix data.source.url"):
        fetch(source, tmp_path / "x.bin", progress=False)
    assert len(server.requests) == 1


def test_unreachable_host_reports_the_fix(tmp_path):
    source = Source(url="http://127.0.0.1:9/x.tar.gz", md5=MD5, retries=1, backoff=0.0)
    with pytest.raises(DownloadError, match=r"Connection refused.*set data\.source\.archive"):
        fetch(source, tmp_path / "raw" / "x.tar.gz", progress=False)
    assert not (tmp_path / "raw").exists()


def test_predownloaded_archive_is_used_in_place_and_verified(tmp_path):
    archive = tmp_path / "mine.bin"
    archive.write_bytes(PAYLOAD)
    source = Source(url="http://127.0.0.1:9/never", md5=MD5, archive=str(archive))
    assert fetch(source, tmp_path / "raw" / "archive.bin") == archive
    bad = Source(url=None, md5="f" * 32, archive=str(archive), where="data.source.train")
    with pytest.raises(ChecksumError, match=r"data\.source\.train\.archive"):
        fetch(bad, tmp_path / "raw" / "archive.bin")
    assert archive.exists()  # a user's own file is never deleted
    missing = Source(url=None, md5=MD5, archive=str(tmp_path / "nope.bin"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fetch(missing, tmp_path / "raw" / "archive.bin")


@pytest.mark.parametrize(
    ("member", "link_to", "hard"),
    [
        ("../escape.txt", None, False),
        ("folder/../../escape.txt", None, False),
        ("/tmp/absolute.txt", None, False),
        ("folder/link", "../../outside", False),
        ("folder/link", "/etc/passwd", False),
        ("folder/hard", "../outside", True),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-up", "symlink-absolute", "hardlink-up"],
)
def test_tar_members_escaping_the_target_are_refused(tmp_path, member, link_to, hard):
    archive = tar_with(tmp_path / "bad.tar.gz", member, link_to=link_to, hard=hard)
    target = tmp_path / "out" / "unpacked"
    with pytest.raises(UnsafeArchiveError, match=r"refusing to unpack bad\.tar\.gz"):
        safe_extract(archive, target)
    assert not target.exists()
    assert _files(tmp_path / "out") == []
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()


def test_links_inside_the_target_are_fine(tmp_path):
    archive = tar_with(tmp_path / "ok.tar.gz", "folder/link", link_to="ok.txt")
    target = safe_extract(archive, tmp_path / "unpacked")
    assert (target / "folder" / "link").read_bytes() == b"ok"


@pytest.mark.parametrize("member", ["../escape.txt", "a/../../escape.txt", "/abs.txt", "C:/x.txt"])
def test_zip_members_escaping_the_target_are_refused(tmp_path, member):
    archive = zip_with(tmp_path / "bad.zip", member)
    with pytest.raises(UnsafeArchiveError, match=r"refusing to unpack bad\.zip"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_is_atomic_and_ensure_extracted_downloads_once(server, tmp_path):
    archive = tmp_path / "good.tar.gz"
    tar_with(archive, "folder/second.txt")
    server.files["/good.tar.gz"] = archive.read_bytes()
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    source = Source(url=server.url("/good.tar.gz"), md5=md5, backoff=0.0)
    raw = tmp_path / "raw"
    folder = ensure_extracted(source, raw, "good.tar.gz")
    assert folder == raw / f"good-{md5[:8]}"
    assert (folder / "folder" / "second.txt").read_bytes() == b"evil"
    assert sorted(p.name for p in raw.iterdir()) == ["good-" + md5[:8], "good.tar.gz"]
    assert ensure_extracted(source, raw, "good.tar.gz") == folder
    assert len(server.requests) == 1
    with tarfile.open(raw / "good.tar.gz") as tf:
        assert "folder/ok.txt" in tf.getnames()
