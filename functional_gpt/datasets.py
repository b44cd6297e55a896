"""Documents to train on: the bundled names, a local text file, or a URL (downloaded once).

A data set is a text file with one document per line, as in microgpt.py.
``parse_docs`` is the pure part; the rest is the shell that finds the text:
``bundled_names`` (shipped with the package), ``read_text`` (a local file,
checked) and ``fetch_url`` (an http(s) download cached on disk).
``load_docs`` picks one of them from a single ``source`` argument.

>>> docs = load_docs(None)
>>> docs[:3]
('emma', 'liam', 'olivia')
>>> len(docs) > 29000
True

Every problem with the data is reported as a ``DataError`` (a ``ValueError``)
whose message says what is wrong and where.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from . import limits
from . import tokenizer as tk

__all__ = [
    "DataError",
    "DataSource",
    "parse_docs",
    "fingerprint",
    "source_of",
    "is_url",
    "bundled_names",
    "read_text",
    "fetch_url",
    "load_docs",
]

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DataError(ValueError):
    """A data source that cannot be used: missing, unreadable, not text, empty, not downloadable.

    >>> issubclass(DataError, ValueError)
    True
    """


def parse_docs(text: str) -> tuple[str, ...]:
    """Return the documents in ``text``: its lines, stripped, blank ones dropped.

    >>> parse_docs("  emma\\n\\nolivia \\r\\n\\t\\n ava")
    ('emma', 'olivia', 'ava')
    >>> parse_docs(" \\n ")
    ()
    """
    return tuple(line.strip() for line in text.split("\n") if line.strip())


def fingerprint(docs: Sequence[str]) -> str:
    """Return the SHA-256 (hex) of the documents, one per line: what a checkpoint checks on resume.

    >>> fingerprint(["emma", "ava"]) == hashlib.sha256(b"emma\\nava\\n").hexdigest()
    True
    """
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(doc.encode("utf-8") + b"\n")
    return digest.hexdigest()


class DataSource(NamedTuple):
    """Where a run's documents came from, and their fingerprint.

    ``kind`` is ``"bundled"`` (``location`` None), ``"path"`` (an absolute
    path) or ``"url"``; ``sha256`` is ``fingerprint(docs)`` and ``docs`` their
    number.
    """

    kind: str
    location: str | None
    sha256: str
    docs: int


def is_url(source: str | os.PathLike[str] | None) -> bool:
    """Whether ``source`` is a URL (``scheme://...``) rather than a file path or None.

    >>> is_url("https://x.org/n.txt"), is_url("names.txt"), is_url(None)
    (True, False, False)
    """
    return isinstance(source, str) and bool(_URL_SCHEME.match(source))


def source_of(source: str | os.PathLike[str] | None, docs: Sequence[str]) -> DataSource:
    """Return the ``DataSource`` record of ``load_docs(source)``'s result ``docs``.

    >>> source_of(None, ["emma"]).kind, source_of("https://x.org/n.txt", ["emma"]).location
    ('bundled', 'https://x.org/n.txt')
    >>> source_of("names.txt", ["emma"]).location == os.path.abspath("names.txt")
    True
    """
    if source is None:
        kind, location = "bundled", None
    elif isinstance(source, str) and _URL_SCHEME.match(source):
        kind, location = "url", source
    else:
        kind, location = "path", os.path.abspath(os.fspath(source))
    return DataSource(kind, location, fingerprint(docs), len(docs))


def bundled_names() -> str:
    """Return the text of the names data set shipped with the package.

    US Social Security baby names of 2017, lower-cased, most common first
    (built by ``scripts/build_names.py``).

    >>> bundled_names().splitlines()[:2]
    ['emma', 'liam']
    """
    resource = files("functional_gpt") / "data" / "names.txt"
    try:
        return resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"the bundled names.txt cannot be read ({e}); reinstall the package") from e


def _text_of(data: bytes, where: str) -> str:
    """The text in ``data`` (from ``where``), or DataError: binary, not UTF-8, or blank."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{where} looks binary, not text: NUL byte at offset {nul}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{where} is not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} "
            f"(line {line})"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        what = "empty" if not text else "only whitespace"
        raise DataError(f"{where} is {what}: expected one document per line")
    return text


def _too_big(where: str) -> DataError:
    return DataError(f"{where} is larger than the limit of {limits.MAX_DATA_BYTES >> 20} MiB "
                     "for a data set")


def read_text(path: str | os.PathLike[str]) -> str:
    """Return the text of the UTF-8 file at ``path``, or raise a ``DataError`` saying why not.

    A leading byte-order mark is dropped. Refused: an empty path, a missing
    path, a directory or other non-regular file (a FIFO is never opened, so
    nothing blocks), an unreadable file, a file over ``limits.MAX_DATA_BYTES``,
    binary data (a NUL byte), bytes that are not UTF-8 (the message gives the
    byte offset), and a file with nothing but whitespace.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "names.txt").write_bytes(b"ann\\nbob\\n")
    >>> read_text(folder / "names.txt")
    'ann\\nbob\\n'
    >>> _ = (folder / "bad.txt").write_bytes(b"ann\\nb\\xe9b\\n")
    >>> read_text(folder / "bad.txt")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: .../bad.txt is not UTF-8 text: byte 0xe9 at offset 5 (line 2)
    >>> read_text("")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: the data path is empty: give a file, a URL, or leave it out
    """
    if os.fspath(path) == "":
        raise DataError("the data path is empty: give a file, a URL, or leave it out")
    p = Path(path)
    try:
        st = os.stat(p)
        if stat.S_ISDIR(st.st_mode):
            raise DataError(f"{p} is a directory, not a text file")
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{p} is not a regular file (a FIFO, device or socket)")
        if st.st_size > limits.MAX_DATA_BYTES:
            raise _too_big(str(p))
        with open(p, "rb") as f:
            data = f.read(limits.MAX_DATA_BYTES + 1)  # a file that grows is still bounded
    except FileNotFoundError:
        raise DataError(f"no such file: {p}") from None
    except PermissionError:
        raise DataError(f"permission denied reading {p}") from None
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror or e}") from None
    if len(data) > limits.MAX_DATA_BYTES:
        raise _too_big(str(p))
    return _text_of(data, str(p))


def _default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/functional_gpt``, or ``~/.cache/functional_gpt`` when that is unset."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "functional_gpt"


def _cache_name(url: str) -> str:
    """A file name for ``url``: a hash of the whole URL, then its (sanitised) basename."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    base = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    base = _UNSAFE.sub("_", base).strip("._")[:80] or "download"
    return f"{digest}-{base}"


_PART = re.compile(r"^\.(.+)\.(\d+)-[^.]*\.part$")  # a download in progress, with its pid


def _pid_is_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs (so its half-written file is stray)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def _remove_stray_parts(folder: Path) -> None:
    """Delete the ``.part`` files of downloads whose process has ended (a kill -9, a crash)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _PART.match(name)
        if match and _pid_is_gone(int(match.group(2))):
            try:
                os.unlink(folder / name)
            except OSError:
                pass


def _check_url(url: str, parts: urllib.parse.SplitResult) -> None:
    """DataError unless ``url`` is an http(s) URL naming a host, without a user name."""
    if parts.scheme.lower() not in ("http", "https"):
        raise DataError(f"cannot download {url}: only http:// and https:// URLs are supported")
    if "@" in parts.netloc:
        raise DataError(f"cannot download {url}: it holds a user name or password (before '@'), "
                        "which downloads do not send: download the file yourself and give "
                        "its path")
    try:
        parts.port  # noqa: B018 (read for its check: a port that is not a number)
    except ValueError as e:
        raise DataError(f"cannot download {url}: not a valid URL ({e})") from None
    if not parts.hostname:
        raise DataError(f"cannot download {url}: the URL names no host (expected "
                        f"{parts.scheme.lower()}://HOST/PATH)")


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, refusing (with a DataError naming it) any target but http(s)."""

    def http_error_302(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                       headers: http.client.HTTPMessage) -> Any:
        target = headers.get("Location") or headers.get("URI")
        if target is not None:
            full = urllib.parse.urljoin(req.full_url, target)
            scheme = urllib.parse.urlsplit(full).scheme.lower()
            if scheme not in ("http", "https"):
                raise DataError(f"cannot download {req.full_url}: the server redirects to "
                                f"{scheme}:// ({full[:200]}); only http:// and https:// "
                                "redirects are followed")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def fetch_url(
    url: str, cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = limits.DOWNLOAD_TIMEOUT, deadline: float = limits.DOWNLOAD_DEADLINE,
    max_bytes: int = limits.MAX_DATA_BYTES,
) -> Path:
    """Return the path of a local copy of ``url``, downloading it only if it is not cached.

    The copy lives in ``cache_dir`` (default ``$XDG_CACHE_HOME/functional_gpt``
    or ``~/.cache/functional_gpt``) under a name made of a hash of the URL and
    its basename. The download goes to a temporary ``.part`` file in the same
    directory that is renamed into place only when it is complete and is UTF-8
    text, so a failed, interrupted or refused download is never cached (the
    ``.part`` files of killed downloads are removed by the next one).

    Limits: no byte for ``timeout`` seconds, the whole download over
    ``deadline`` seconds, or a body (after decoding) over ``max_bytes``, are
    each a ``DataError``. A gzip- or deflate-encoded body is decoded; an HTML
    page, another encoding, HTTP errors, redirect loops, truncated bodies and
    network failures are ``DataError`` too, as are a URL that names no host or
    holds a user name or password, and a redirect to anything but http(s).

    >>> fetch_url("ftp://example.com/names.txt")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: cannot download ftp://...: only http:// and https:// ...
    >>> fetch_url("http://[::1")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: cannot download http://[::1: not a valid URL (...
    >>> fetch_url("http://")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: cannot download http://: the URL names no host (expected ...
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as e:
        raise DataError(f"cannot download {url}: not a valid URL ({e})") from None
    _check_url(url, parts)
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    target = folder / _cache_name(url)
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stray_parts(folder)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.{os.getpid()}-",
                                        suffix=".part")
    except OSError as e:
        raise DataError(f"cannot write to the cache directory {folder}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, _Limits(timeout, deadline, max_bytes))
        _text_of(tmp.read_bytes(), f"the download of {url}")
        os.replace(tmp, target)
    except OSError as e:
        raise DataError(f"cannot write to the cache directory {folder}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return target


class _Limits(NamedTuple):
    timeout: float
    deadline: float
    max_bytes: int


def _decoder(url: str, encoding: str) -> zlib._Decompress | None:
    """A decompressor for the body's Content-Encoding (None: as it is), or DataError."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise DataError(f"cannot download {url}: the server sent it with Content-Encoding "
                    f"{encoding!r}, which only gzip and deflate can be")


def _copy_body(url: str, response: http.client.HTTPResponse, out: BinaryIO,
               bounds: _Limits) -> None:
    """Copy the (decoded) body into ``out`` within the time and size limits."""
    decoder = _decoder(url, response.headers.get("Content-Encoding", ""))
    mime = response.headers.get_content_type()
    if mime in ("text/html", "application/xhtml+xml"):
        raise DataError(f"cannot download {url}: it is an HTML page, not a text file "
                        "(for a file on GitHub, use its 'raw' address)")
    promised = response.length
    if decoder is None and promised is not None and promised > bounds.max_bytes:
        raise DataError(f"cannot download {url}: it is {promised} bytes, more than the limit "
                        f"of {bounds.max_bytes}")
    stop_at = time.monotonic() + bounds.deadline
    written, first = 0, True
    while chunk := response.read1(1 << 16):
        if decoder is not None:
            chunk = decoder.decompress(chunk, bounds.max_bytes + 1 - written)
        if first and chunk.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
            raise DataError(f"cannot download {url}: it is an HTML page, not a text file "
                            "(for a file on GitHub, use its 'raw' address)")
        first = first and not chunk.strip()
        written += len(chunk)
        if written > bounds.max_bytes or (decoder is not None and decoder.unconsumed_tail):
            raise DataError(f"cannot download {url}: more than the limit of "
                            f"{bounds.max_bytes} bytes")
        out.write(chunk)
        if time.monotonic() > stop_at:
            raise DataError(f"cannot download {url}: not complete within {bounds.deadline:g} s "
                            f"({written} bytes so far)")
    if response.length:  # http.client counts down the bytes Content-Length promised
        raise DataError(f"download of {url} was cut short ({response.length} bytes missing)")
    if decoder is not None:
        tail = decoder.flush()
        if written + len(tail) > bounds.max_bytes:
            raise DataError(f"cannot download {url}: more than the limit of "
                            f"{bounds.max_bytes} bytes")
        out.write(tail)


def _download(url: str, out: BinaryIO, bounds: _Limits) -> None:
    """Copy the body of ``url`` into the binary file ``out``; every failure is a DataError."""
    request = urllib.request.Request(
        url, headers={"User-Agent": "functional_gpt", "Accept-Encoding": "gzip"}
    )
    timeout = bounds.timeout
    opener = urllib.request.build_opener(_HttpRedirectsOnly)
    try:
        with opener.open(request, timeout=timeout) as response:
            _copy_body(url, response, out, bounds)
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400 and not (e.headers.get("Location") or e.headers.get("URI")):
            raise DataError(f"cannot download {url}: the server answered HTTP {e.code} "
                            f"{e.reason} without saying where to go") from None
        if 300 <= e.code < 400:
            raise DataError(f"cannot download {url}: too many redirects or a redirect loop "
                            f"(HTTP {e.code})") from None
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise DataError(f"cannot download {url}: no answer within {timeout:g} s") from None
        raise DataError(
            f"cannot download {url}: {e.reason} (are you offline? a local file path works too)"
        ) from None
    except TimeoutError:
        raise DataError(f"cannot download {url}: no answer within {timeout:g} s") from None
    except zlib.error as e:
        raise DataError(f"cannot download {url}: its compressed body is corrupt ({e})") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot download {url}: {e!r}") from None


def load_docs(source: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Return the documents of ``source``: None for the bundled names, a URL, or a file path.

    An http(s) URL is downloaded once into the cache (see ``fetch_url``);
    anything else that is not a URL is read as a local file (see ``read_text``).
    A document holding a character that is not printable (a tab, a control
    character: see ``tokenizer.unprintable_chars``) is refused, naming it.

    >>> load_docs()[:2]
    ('emma', 'liam')
    >>> load_docs("s3://bucket/names.txt")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: unsupported URL scheme in s3://bucket/names.txt: give ...
    """
    if source is None:
        text = bundled_names()
    elif is_url(source):
        assert isinstance(source, str)
        if not source.lower().startswith(("http://", "https://")):
            raise DataError(
                f"unsupported URL scheme in {source}: give an http(s):// URL or a local path, "
                "or leave it out for the bundled names"
            )
        text = read_text(fetch_url(source))
    else:
        text = read_text(source)
    docs = parse_docs(text)
    where = source or "the bundled names"
    if not docs:
        raise DataError(f"no documents in {where}")
    if not "".join(docs).isprintable():  # a vocabulary holds printable characters only
        n, doc = next((n, d) for n, d in enumerate(docs, 1) if not d.isprintable())
        bad = ", ".join(map(repr, tk.unprintable_chars(doc)))
        raise DataError(f"{where}: document {n} ({doc[:40]!r}) holds {bad}: a document is one "
                        "line of printable characters (no tabs or control characters)")
    return docs
