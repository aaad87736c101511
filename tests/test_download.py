"""holovae.download against a real local HTTP server: checksums, atomicity, mirrors, retries, CLI."""
import gzip
import hashlib
import http.server
import logging
import shutil
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from holovae.cli import main
from holovae.download import DownloadError, download, verify

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_shared = pytest.mark.skipif(not SHARED.exists(),
                                  reason=f"real MNIST files not available at {SHARED}")

T10K_IMAGES_RAW_MD5 = "2646ac647ad5339dbf082846283269ea"
T10K_IMAGES_OFFICIAL_GZ_MD5 = "9fb629c4189551a2d022fa330f9573f3"
FAST = dict(retries=2, timeout=5, progress=False, backoff=0)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the directory; ``/fail/...`` always answers 500, ``/slow/...`` stalls (requests are counted)."""

    hits: dict = {}

    def do_GET(self):
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path.startswith("/fail/"):
            self.send_error(500, "broken mirror")
            return
        if self.path.startswith("/slow/"):
            time.sleep(1.0)  # longer than the client's timeout in the test
            return
        if self.path.startswith("/short/"):   # announces more bytes than it sends, then hangs up
            body = (Path(self.directory) / self.path[len("/short/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served directory) of a threaded HTTP server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    Handler.hits = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def small_gz(server):
    """A small generated gzip file on the server: (url, gz bytes, raw bytes)."""
    base, root = server
    raw = bytes(range(256)) * 40
    gz = gzip.compress(raw, mtime=0)
    (root / "small.gz").write_bytes(gz)
    return f"{base}/small.gz", gz, raw


def assert_clean(dest: Path):
    assert not dest.exists()
    assert not (dest.parent / f".{dest.name}.part").exists()


# ------------------------------------------------------------------ always run (generated files)
def test_success_small(small_gz, tmp_path):
    url, gz, raw = small_gz
    dest = tmp_path / "out" / "small.gz"
    assert download(url, dest, md5=md5(gz), decompressed_md5=md5(raw),
                    sha256=hashlib.sha256(gz).hexdigest(), **FAST) == dest
    assert dest.read_bytes() == gz
    assert not (dest.parent / ".small.gz.part").exists()


def test_corrupted_rejected(server, small_gz, tmp_path):
    url, gz, raw = small_gz
    bad = bytearray(gz)
    for i in (20, 40, 60):  # flip bytes inside the deflate stream
        bad[i] ^= 0xFF
    (server[1] / "small.gz").write_bytes(bytes(bad))
    dest = tmp_path / "small.gz"
    with pytest.raises(DownloadError) as err:
        download(url, dest, md5=md5(gz), **FAST)
    msg = str(err.value)
    assert url in msg and str(dest) in msg and md5(gz) in msg and md5(bytes(bad)) in msg
    assert_clean(dest)
    assert Handler.hits["/small.gz"] == 1  # wrong content is not downloaded again


def test_regzipped_accepted_by_decompressed_md5_only(server, small_gz, tmp_path):
    url, gz, raw = small_gz
    regz = gzip.compress(raw, mtime=12345)  # same payload, different header
    assert regz != gz
    (server[1] / "small.gz").write_bytes(regz)
    download(url, tmp_path / "a.gz", decompressed_md5=md5(raw), **FAST)
    assert (tmp_path / "a.gz").read_bytes() == regz
    with pytest.raises(DownloadError, match=md5(gz)):
        download(url, tmp_path / "b.gz", md5=md5(gz), decompressed_md5=md5(raw), **FAST)
    assert_clean(tmp_path / "b.gz")


def test_not_gzip_with_decompressed_md5(server, tmp_path):
    base, root = server
    (root / "plain.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DownloadError, match="not a valid gzip file"):
        download(f"{base}/plain.gz", tmp_path / "plain.gz", decompressed_md5="0" * 32, **FAST)
    assert_clean(tmp_path / "plain.gz")


def test_404_falls_back_to_mirror(server, small_gz, tmp_path):
    url, gz, raw = small_gz
    base = server[0]
    dest = tmp_path / "small.gz"
    download([f"{base}/missing.gz", url], dest, md5=md5(gz), **FAST)
    assert dest.read_bytes() == gz
    assert Handler.hits["/missing.gz"] == 1


def test_retries_exhausted(server, tmp_path):
    base = server[0]
    dest = tmp_path / "x.gz"
    with pytest.raises(DownloadError) as err:
        download([f"{base}/fail/x.gz", f"{base}/missing.gz"], dest, **FAST)
    msg = str(err.value)
    assert f"{base}/fail/x.gz" in msg and "500" in msg and "404" in msg and str(dest) in msg
    assert Handler.hits["/fail/x.gz"] == 1 + FAST["retries"]  # transient: retried
    assert Handler.hits["/missing.gz"] == 1  # permanent: dropped
    assert_clean(dest)


def test_timeout_retried_then_mirror(server, small_gz, tmp_path):
    url, gz, raw = small_gz
    dest = tmp_path / "small.gz"
    download([f"{server[0]}/slow/small.gz", url], dest, md5=md5(gz),
             **{**FAST, "timeout": 0.2, "retries": 0})
    assert dest.read_bytes() == gz and Handler.hits["/slow/small.gz"] == 1


def test_connection_refused_retried(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", **FAST)


def test_local_path_and_file_url(tmp_path):
    src = tmp_path / "offline.bin"
    src.write_bytes(b"offline copy")
    download(str(src), tmp_path / "a.bin", md5=md5(b"offline copy"), **FAST)
    download(src.as_uri(), tmp_path / "b.bin", md5=md5(b"offline copy"), **FAST)
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes() == b"offline copy"
    with pytest.raises(DownloadError, match="No such file"):
        download([str(tmp_path / "nope")], tmp_path / "c.bin", **FAST)


def test_verify_alone(tmp_path):
    p = tmp_path / "f.gz"
    p.write_bytes(gzip.compress(b"abc"))
    verify(p, md5=md5(p.read_bytes()).upper(), decompressed_md5=md5(b"abc"))
    with pytest.raises(DownloadError, match=f"{p}.*decompressed_md5 expected {'1' * 32}"):
        verify(p, decompressed_md5="1" * 32)


def test_cli_bad_checksum(small_gz, tmp_path, caplog):
    url, gz, raw = small_gz
    out = tmp_path / "cli.gz"
    with caplog.at_level(logging.ERROR, logger="holovae"):
        rc = main(["download", "--url", url, "--out", str(out), "--md5", "f" * 32, "--retries", "0",
                   "--no-progress"])
    assert rc == 1
    assert "f" * 32 in caplog.text and md5(gz) in caplog.text and url in caplog.text
    assert_clean(out)
    assert main(["download", "--url", url, "--out", str(out), "--md5", md5(gz), "--no-progress"]) == 0
    assert out.read_bytes() == gz


# ------------------------------------------------------------------ real MNIST (shared folder)
@needs_shared
def test_mnist_t10k_images(server, tmp_path):
    base, root = server
    shutil.copy(SHARED / "t10k-images-idx3-ubyte.gz", root)
    url, dest = f"{base}/t10k-images-idx3-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz"
    gz_md5 = md5((SHARED / "t10k-images-idx3-ubyte.gz").read_bytes())
    download(url, dest, md5=gz_md5, decompressed_md5=T10K_IMAGES_RAW_MD5, **FAST)
    verify(dest, decompressed_md5=T10K_IMAGES_RAW_MD5)
    # this copy is re-gzipped: the official .gz md5 rejects it, naming both checksums
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "official.gz", md5=T10K_IMAGES_OFFICIAL_GZ_MD5,
                 decompressed_md5=T10K_IMAGES_RAW_MD5, **FAST)
    assert T10K_IMAGES_OFFICIAL_GZ_MD5 in str(err.value) and gz_md5 in str(err.value)
    assert_clean(tmp_path / "official.gz")


@needs_shared
def test_mnist_corrupted(server, tmp_path):
    base, root = server
    data = bytearray((SHARED / "t10k-images-idx3-ubyte.gz").read_bytes())
    for i in (1000, 500_000, 1_000_000):
        data[i] ^= 0x5A
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(data))
    dest = tmp_path / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(DownloadError) as err:
        download(f"{base}/t10k-images-idx3-ubyte.gz", dest,
                 decompressed_md5=T10K_IMAGES_RAW_MD5, **FAST)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and T10K_IMAGES_RAW_MD5 in msg
    assert_clean(dest)


@needs_shared
@pytest.mark.parametrize("name, gz_md5, raw_md5", [
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
])
def test_mnist_labels_official_md5(server, tmp_path, name, gz_md5, raw_md5):
    base, root = server
    shutil.copy(SHARED / name, root)
    download([f"{base}/missing/{name}", f"{base}/{name}"], tmp_path / name,
             md5=gz_md5, decompressed_md5=raw_md5, **FAST)
    assert (tmp_path / name).read_bytes() == (SHARED / name).read_bytes()


def test_unpinned_file_is_pinned_at_first_download_then_enforced(server, tmp_path, caplog):
    """No published checksum: the first complete download records its sha256 in the lock;
    a later download of the same file that differs (truncated at the source) is refused."""
    import json
    base, root = server
    whole = bytes(range(256)) * 64
    (root / "data.zip").write_bytes(whole)
    lock, dest = tmp_path / "checksums.lock", tmp_path / "dl" / "data.zip"
    with caplog.at_level(logging.WARNING, logger="holovae"):
        download(f"{base}/data.zip", dest, lock=lock, **FAST)
    entry = json.loads(lock.read_text())["dl/data.zip"]      # keyed relative to the lock's folder
    assert entry["sha256"] == hashlib.sha256(whole).hexdigest() and entry["bytes"] == len(whole)
    assert "pinned its sha256" in caplog.text
    dest.unlink()
    (root / "data.zip").write_bytes(whole[:1000])              # the source now serves a truncated file
    with pytest.raises(DownloadError, match=r"checksum mismatch \(pinned in .*checksums.lock"):
        download(f"{base}/data.zip", dest, lock=lock, **FAST)
    assert_clean(dest)
    (root / "data.zip").write_bytes(whole)                       # the same content again: accepted
    download(f"{base}/data.zip", dest, lock=lock, **FAST)
    assert dest.read_bytes() == whole


def test_short_body_against_content_length_is_retried_and_refused(server, tmp_path):
    base, root = server
    (root / "f.bin").write_bytes(b"x" * 5000)
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="IncompleteRead"):
        download(f"{base}/short/f.bin", dest, lock=tmp_path / "lock", **FAST)
    assert_clean(dest) and not (tmp_path / "lock").exists()
    assert Handler.hits["/short/f.bin"] == 1 + FAST["retries"]


def test_a_configured_checksum_wins_over_the_lock(server, tmp_path):
    base, root = server
    (root / "g.bin").write_bytes(b"abc")
    dest, lock = tmp_path / "g.bin", tmp_path / "lock"
    download(f"{base}/g.bin", dest, md5=md5(b"abc"), lock=lock, **FAST)
    assert not lock.exists()                                     # nothing to pin: it was verified
