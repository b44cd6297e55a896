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
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import BinaryIO, NamedTuple

__all__ = [
    "DataError",
    "DataSource",
    "parse_docs",
    "fingerprint",
    "source_of",
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


def read_text(path: str | os.PathLike[str]) -> str:
    """Return the text of the UTF-8 file at ``path``, or raise a ``DataError`` saying why not.

    A leading byte-order mark is dropped. Refused: a missing path, a directory
    or other non-regular file, an unreadable file, binary data (a NUL byte),
    bytes that are not UTF-8 (the message gives the byte offset), and a file
    with nothing but whitespace.

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
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise DataError(f"{p} is a directory, not a text file")
        if p.exists() and not p.is_file():
            raise DataError(f"{p} is not a regular file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no such file: {p}") from None
    except PermissionError:
        raise DataError(f"permission denied reading {p}") from None
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror or e}") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{p} looks binary, not text: NUL byte at offset {nul}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{p} is not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} (line {line})"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        what = "empty" if not text else "only whitespace"
        raise DataError(f"{p} is {what}: expected one document per line")
    return text


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


def fetch_url(
    url: str, cache_dir: str | os.PathLike[str] | None = None, timeout: float = 30.0
) -> Path:
    """Return the path of a local copy of ``url``, downloading it only if it is not cached.

    The copy lives in ``cache_dir`` (default ``$XDG_CACHE_HOME/functional_gpt``
    or ``~/.cache/functional_gpt``) under a name made of a hash of the URL and
    its basename. The download goes to a temporary file in the same directory
    that is renamed into place when complete, so a failed or interrupted
    download never leaves a partial file behind. Network failures (offline,
    HTTP errors, timeouts, truncated bodies) raise ``DataError``.

    >>> fetch_url("ftp://example.com/names.txt")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: cannot download ftp://...: only http:// and https:// ...
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise DataError(f"cannot download {url}: only http:// and https:// URLs are supported")
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    target = folder / _cache_name(url)
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise DataError(f"cannot write to the cache directory {folder}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, timeout)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download(url: str, out: BinaryIO, timeout: float) -> None:
    """Copy the body of ``url`` into the binary file ``out``; every failure is a DataError."""
    request = urllib.request.Request(url, headers={"User-Agent": "functional_gpt"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while chunk := response.read(1 << 16):
                out.write(chunk)
            if response.length:  # http.client counts down the bytes Content-Length promised
                raise DataError(
                    f"download of {url} was cut short ({response.length} bytes missing)"
                )
    except urllib.error.HTTPError as e:
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise DataError(f"cannot download {url}: no answer within {timeout} s") from None
        raise DataError(
            f"cannot download {url}: {e.reason} (are you offline? a local file path works too)"
        ) from None
    except TimeoutError:
        raise DataError(f"cannot download {url}: no answer within {timeout} s") from None
    except (OSError, http.client.HTTPException) as e:
        raise DataError(f"cannot download {url}: {e!r}") from None


def load_docs(source: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Return the documents of ``source``: None for the bundled names, a URL, or a file path.

    An http(s) URL is downloaded once into the cache (see ``fetch_url``);
    anything else that is not a URL is read as a local file (see ``read_text``).

    >>> load_docs()[:2]
    ('emma', 'liam')
    >>> load_docs("s3://bucket/names.txt")
    Traceback (most recent call last):
    ...
    functional_gpt.datasets.DataError: unsupported URL scheme in s3://bucket/names.txt: use ...
    """
    if source is None:
        text = bundled_names()
    elif isinstance(source, str) and _URL_SCHEME.match(source):
        if not source.lower().startswith(("http://", "https://")):
            raise DataError(
                f"unsupported URL scheme in {source}: use http(s)://, a local path, "
                "or None for the bundled names"
            )
        text = read_text(fetch_url(source))
    else:
        text = read_text(source)
    docs = parse_docs(text)
    if not docs:
        raise DataError(f"no documents in {source or 'the bundled names'}")
    return docs
