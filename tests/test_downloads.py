"""Hostile downloads from a real HTTP server on 127.0.0.1: slow, endless, gzip, HTML, loops.

The limits are ``fetch_url`` arguments, made small here so that every test is quick; the
command line uses the defaults of ``functional_gpt.limits``. No test asserts a time.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_cli import _env

from functional_gpt import datasets as D

NAMES = b"emma\nolivia\nava\n"


class Hostile:
    """A server in a thread; ``sent`` counts the body bytes it wrote, ``requests`` the GETs."""

    def __init__(self) -> None:
        self.sent = 0
        self.requests = 0
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                hostile.requests += 1
                try:
                    self.serve(self.path)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def body(self, data: bytes, **headers: str) -> None:
                self.send_response(200)
                for key, value in {"Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def serve(self, path: str) -> None:
                if path == "/trickle":  # one byte at a time, never done
                    self.send_response(200)
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    for _ in range(100_000):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        hostile.sent += 1
                        time.sleep(0.02)
                elif path == "/endless":  # no length, no end
                    self.send_response(200)
                    self.end_headers()
                    while True:
                        self.wfile.write(b"emma\n" * 2000)
                        hostile.sent += 10_000
                elif path == "/huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**12))
                    self.end_headers()
                elif path == "/gzip":
                    self.body(gzip.compress(NAMES), **{"Content-Encoding": "gzip"})
                elif path == "/bomb":
                    self.body(gzip.compress(b"a\n" * 5_000_000), **{"Content-Encoding": "gzip"})
                elif path == "/brotli":
                    self.body(NAMES, **{"Content-Encoding": "br"})
                elif path == "/html":
                    self.body(b"<p>emma</p>\n", **{"Content-Type": "text/html; charset=utf-8"})
                elif path == "/sniffed":
                    self.body(b"\n<!DOCTYPE html>\n<html><body>emma</body></html>\n",
                              **{"Content-Type": "text/plain"})
                elif path.startswith("/to/"):  # a redirect to what follows /to/
                    self.send_response(302)
                    self.send_header("Location", path.removeprefix("/to/"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/nowhere":  # a redirect that says not where to
                    self.send_response(302)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.body(NAMES)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda *args: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[Hostile]:
    s = Hostile()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def cached(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_trickle_stops_at_the_deadline_and_caches_nothing(server, tmp_path):
    with pytest.raises(D.DataError, match=r"not complete within 0.5 s \(\d+ bytes so far\)"):
        D.fetch_url(server.url("/trickle"), tmp_path, timeout=5, deadline=0.5)
    assert cached(tmp_path) == []


@pytest.mark.parametrize("path", ["/endless", "/huge", "/bomb"])
def test_bodies_over_the_size_limit_are_refused(server, tmp_path, path):
    with pytest.raises(D.DataError, match="more than the limit of 100000"):
        D.fetch_url(server.url(path), tmp_path, max_bytes=100_000)
    assert cached(tmp_path) == []
    assert server.sent < 10**8  # stopped long before the end (there is none)


def test_a_gzip_body_is_decoded_and_cached_as_text(server, tmp_path):
    path = D.fetch_url(server.url("/gzip"), tmp_path)
    assert path.read_bytes() == NAMES
    assert D.parse_docs(D.read_text(path)) == ("emma", "olivia", "ava")


@pytest.mark.parametrize("path, words", [
    ("/html", "it is an HTML page"),
    ("/sniffed", "it is an HTML page"),
    ("/brotli", "Content-Encoding 'br'"),
    ("/loop", "redirect loop"),
])
def test_what_is_not_a_text_file_is_refused_and_never_cached(server, tmp_path, path, words):
    with pytest.raises(D.DataError) as info:
        D.fetch_url(server.url(path), tmp_path)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert cached(tmp_path) == []


def test_stray_part_files_of_dead_downloads_are_removed(server, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stray = tmp_path / f".abc-names.txt.{dead}-x1y2.part"
    live = tmp_path / f".abc-names.txt.{os.getpid()}-x1y2.part"
    stray.write_text("half")
    live.write_text("half")
    D.fetch_url(server.url("/names.txt"), tmp_path)
    assert not stray.exists() and live.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_sigterm_during_a_download_leaves_no_part_file(server, tmp_path):
    cache = tmp_path / "cache" / "functional_gpt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "functional_gpt", "--data", server.url("/trickle")],
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        for _ in range(3000):  # until the download is under way (at most a minute)
            if server.sent >= 5 and any(n.endswith(".part") for n in cached(cache)):
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert err.strip() == "functional-gpt: terminated (SIGTERM)"
    assert cached(cache) == []


@pytest.mark.parametrize("target, scheme", [
    ("ftp://127.0.0.1/names.txt", "ftp"),
    ("file:///etc/hostname", "file"),
    ("gopher://127.0.0.1/names", "gopher"),
])
def test_a_redirect_to_anything_but_http_is_refused_naming_its_scheme(server, tmp_path, target,
                                                                      scheme):
    with pytest.raises(D.DataError) as info:
        D.fetch_url(server.url("/to/" + target), tmp_path)
    message = str(info.value)
    assert f"redirects to {scheme}://" in message and target in message, message
    assert "loop" not in message and "offline" not in message
    assert cached(tmp_path) == []


def test_a_redirect_to_http_is_followed(server, tmp_path):
    path = D.fetch_url(server.url("/to/" + server.url("/names.txt")), tmp_path)
    assert path.read_bytes() == NAMES


def test_a_redirect_without_a_location_is_not_called_a_loop(server, tmp_path):
    with pytest.raises(D.DataError, match="HTTP 302 .* without saying where to go"):
        D.fetch_url(server.url("/nowhere"), tmp_path)


@pytest.mark.parametrize("url, words", [
    ("http://", "the URL names no host"),
    ("https:///names.txt", "the URL names no host"),
    ("http://:8080/names.txt", "the URL names no host"),
    ("http://127.0.0.1:port/names.txt", "not a valid URL"),
])
def test_urls_without_a_host_say_so(tmp_path, url, words):
    with pytest.raises(D.DataError, match=words):
        D.fetch_url(url, tmp_path)


def test_a_url_with_a_password_says_so_before_any_connection(server, tmp_path):
    url = server.url("/names.txt").replace("http://", "http://ann:secret@")
    with pytest.raises(D.DataError) as info:
        D.fetch_url(url, tmp_path)
    assert "user name or password" in str(info.value)
    assert "offline" not in str(info.value) and "Name or service" not in str(info.value)
    assert server.requests == 0 and cached(tmp_path) == []
