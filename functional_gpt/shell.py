"""The command line's guards: stop signals, outputs that go away, output paths, one-line messages.

This is part of the imperative shell (``cli.py`` uses it); nothing in the
functional core needs it. Four guards, each small:

- ``StopSignals``: SIGINT, SIGTERM and SIGHUP stop the work at a safe point.
  The first one may interrupt a computation (a training step, a download);
  every later one, and any that arrives while a checkpoint is written, is
  only recorded, so no signal can cut a save short.
- ``Output``: a text stream whose write failures (a closed pipe, a full
  disk, a closed descriptor) become one ``OutputGone``, and whose text is
  escaped rather than refused when the stream's encoding cannot hold it.
- ``check_output_paths``: refuses an output path that is an input, another
  output, a directory or something other than a regular file, before any
  work starts; ``write_atomically`` writes a file whole or not at all.
- ``one_line``: a message with its control characters escaped, so that an
  error is always exactly one line.

>>> one_line("no such file: names\\n.txt")
'no such file: names\\\\n.txt'
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import IO, BinaryIO

__all__ = [
    "STOP_SIGNALS",
    "BROKEN_PIPE_STATUS",
    "Stopped",
    "StopSignals",
    "signal_status",
    "stop_words",
    "OutputGone",
    "Output",
    "discard",
    "say",
    "PathRefused",
    "check_output_paths",
    "write_atomically",
    "one_line",
]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
BROKEN_PIPE_STATUS = 128 + signal.SIGPIPE  # what a shell reports for a Unix tool whose reader left


class Stopped(KeyboardInterrupt):
    """A stop signal interrupted the work; ``signum`` says which.

    A ``KeyboardInterrupt``, so that no ``except Exception`` swallows it.

    >>> Stopped(signal.SIGTERM).signum == signal.SIGTERM
    True
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def signal_status(signum: int) -> int:
    """Return the exit status of a run stopped by ``signum``: 128 plus its number, as shells do.

    >>> signal_status(signal.SIGINT), signal_status(signal.SIGTERM), signal_status(signal.SIGHUP)
    (130, 143, 129)
    """
    return 128 + int(signum)


_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


def stop_words(signum: int) -> str:
    """Return how a stop message names ``signum``: what happened and the signal's name.

    >>> stop_words(signal.SIGINT), stop_words(signal.SIGTERM), stop_words(signal.SIGHUP)
    ('interrupted (SIGINT)', 'terminated (SIGTERM)', 'hung up (SIGHUP)')
    """
    name = signal.Signals(signum).name
    return f"{_WORDS.get(signal.Signals(signum), 'stopped')} ({name})"


class StopSignals:
    """Shell state: the stop signals that arrived, and whether the first may interrupt the work.

    ``installed()`` makes SIGINT, SIGTERM and SIGHUP call ``record``. Until
    one has arrived, a signal raises ``Stopped`` (once, ever) wherever the
    work is ``interruptible`` (the default); inside ``deferred()`` it is only
    recorded, and the code looks at ``first`` when it is safe to stop. After
    the first signal, no signal raises again: a second Ctrl-C or SIGTERM
    cannot cut a save short. (The one mutable object of this module; it
    lives as long as one command.)

    >>> stops = StopSignals()
    >>> with stops.deferred():
    ...     stops.record(signal.SIGTERM, None)     # as the handler does
    ...     stops.record(signal.SIGINT, None)
    >>> stops.first == signal.SIGTERM, stops.arrived == (signal.SIGTERM, signal.SIGINT)
    (True, True)
    """

    def __init__(self) -> None:
        self._arrived: list[int] = []
        self._interruptible = True
        self._raised = False

    @property
    def arrived(self) -> tuple[int, ...]:
        """The signals received so far, in order."""
        return tuple(self._arrived)

    @property
    def first(self) -> int | None:
        """The first signal received, or None."""
        return self._arrived[0] if self._arrived else None

    def record(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: note ``signum``; raise ``Stopped`` if it is the first and may.

        A later signal never raises, even where the first was only recorded:
        the code that deferred the first is already stopping.
        """
        first = not self._arrived
        self._arrived.append(signum)
        if first and self._interruptible and not self._raised:
            self._raised = True
            raise Stopped(signum)

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Within the block, the stop signals call ``record``; the old handlers come back after.

        Outside the main thread signals cannot be changed, and the block runs as it is.
        """
        try:
            old = [(sig, signal.signal(sig, self.record)) for sig in STOP_SIGNALS]
        except ValueError:
            old = []
        try:
            yield self
        finally:
            for sig, previous in old:
                signal.signal(sig, previous)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Within the block, signals are only recorded (look at ``first`` to act on them)."""
        before, self._interruptible = self._interruptible, False
        try:
            yield
        finally:
            self._interruptible = before

    def end(self) -> None:
        """The work is over: from now on a signal is only recorded, and never raises.

        >>> stops = StopSignals()
        >>> stops.end()
        >>> stops.record(signal.SIGHUP, None)   # a late hang-up: noted, nothing raised
        >>> stops.arrived == (signal.SIGHUP,)
        True
        """
        self._raised = True

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Within the block, the first signal raises ``Stopped``: at once if it already came."""
        before, self._interruptible = self._interruptible, True
        try:
            if self._arrived and not self._raised:
                self._raised = True
                raise Stopped(self._arrived[0])
            yield
        finally:
            self._interruptible = before


# ------------------------------------------------------------------- outputs


class OutputGone(Exception):
    """Writing to an output failed: ``name`` says which output, ``error`` why.

    >>> gone = OutputGone("standard output", BrokenPipeError(errno.EPIPE, "Broken pipe"))
    >>> gone.broken_pipe, str(gone)
    (True, 'cannot write standard output: Broken pipe')
    """

    def __init__(self, name: str, error: OSError) -> None:
        super().__init__(f"cannot write {name}: {error.strerror or error}")
        self.name, self.error = name, error

    @property
    def broken_pipe(self) -> bool:
        """Whether the reader went away (a closed pipe), as when piped into ``head``."""
        return isinstance(self.error, BrokenPipeError)


class Output:
    """A text stream for the shell's output: failures become ``OutputGone``, lines are flushed.

    ``stream`` None (a closed standard output) fails at the first write, as a
    closed descriptor does. Text the stream's encoding cannot hold is written
    with backslash escapes instead of being refused. Every write that ends a
    line is flushed at once, so that a reader sees each line as it is made.

    >>> import io
    >>> raw = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    >>> out = Output(raw, "standard output")
    >>> print("sample  1: zoë", file=out)
    >>> raw.buffer.getvalue()
    b'sample  1: zo\\\\xeb\\n'
    >>> print("x", file=Output(None, "standard output"))
    Traceback (most recent call last):
    ...
    functional_gpt.shell.OutputGone: cannot write standard output: Bad file descriptor
    """

    def __init__(self, stream: IO[str] | None, name: str) -> None:
        self.stream, self.name = stream, name

    def write(self, text: str) -> int:
        """Write ``text`` (flushing when it ends a line); return its length."""
        try:
            if self.stream is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            try:
                self.stream.write(text)
            except UnicodeEncodeError:
                encoding = getattr(self.stream, "encoding", None) or "utf-8"
                self.stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
            if text.endswith("\n"):
                self.stream.flush()
        except (OSError, ValueError) as e:  # ValueError: the stream was closed
            error = e if isinstance(e, OSError) else OSError(errno.EBADF, str(e))
            raise OutputGone(self.name, error) from None
        return len(text)

    def flush(self) -> None:
        """Flush the stream."""
        try:
            if self.stream is not None:
                self.stream.flush()
        except (OSError, ValueError) as e:
            error = e if isinstance(e, OSError) else OSError(errno.EBADF, str(e))
            raise OutputGone(self.name, error) from None

    def isatty(self) -> bool:
        """Whether the stream is a terminal."""
        try:
            return self.stream is not None and self.stream.isatty()
        except (OSError, ValueError):
            return False


def discard(stream: IO[str] | None) -> None:
    """Point ``stream``'s descriptor at /dev/null, so that Python's last flush cannot fail.

    For an output that failed (a hung-up terminal, a closed pipe): text still
    in its buffer would otherwise be flushed again at exit, fail again, and
    turn a clean exit status into Python's 120. A stream without a descriptor
    (a test's capture) is left alone.

    >>> import io
    >>> discard(io.StringIO()), discard(None)
    (None, None)
    """
    try:
        if stream is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file: nothing is flushed to it at exit


def say(line: str) -> None:
    """Write ``line`` as one line on standard error; a failure to show it is not another error.

    Where standard error is gone too (a terminal that hung up), the line is
    dropped and standard error discarded (see ``discard``).

    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     say("functional-gpt: hung up\\n(SIGHUP)")
    >>> err.getvalue()
    'functional-gpt: hung up\\\\n(SIGHUP)\\n'
    """
    try:
        if sys.stderr is not None:
            sys.stderr.write(one_line(line) + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        discard(sys.stderr)


# --------------------------------------------------------------------- paths


class PathRefused(ValueError):
    """An output path that would destroy data or cannot be written; the message says why.

    >>> issubclass(PathRefused, ValueError)
    True
    """


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same resolved path, or the same inode (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_writable(path: str, flag: str) -> None:
    """Refuse ``path`` unless a regular file can be made or replaced there."""
    where = f"cannot write {flag} {path}"
    if path == "":
        raise PathRefused(f"{flag}: the path is empty")
    try:
        st = os.stat(path)  # follows a symlink: the target is what gets written
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PathRefused(f"{where}: {e.strerror or e}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise PathRefused(f"{where}: it is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise PathRefused(f"{where}: it is not a regular file (a device, FIFO or socket), "
                          "and writing would replace or block on it")
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise PathRefused(f"{where}: no such directory {folder}")
    try:
        if st is not None:  # an existing file must open for writing (a read-only file or disk)
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        fd, tmp = tempfile.mkstemp(prefix=".functional-gpt-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise PathRefused(f"{where}: {e.strerror or e}") from None


def check_output_paths(
    outputs: Mapping[str, str | None], inputs: Mapping[str, str | None],
    may_replace: Mapping[str, str] | None = None,
) -> None:
    """Refuse, before any work, output paths that would destroy data or cannot be written.

    ``outputs`` and ``inputs`` map a flag (``--save``) to its path (None when
    not given). Refused: an empty path, a directory, anything but a regular
    file (``/dev/null``, a FIFO), an unwritable file or folder (the message
    gives the system's reason, such as a read-only file system), two outputs
    that are one file, and an output that is one of the inputs, unless
    ``may_replace`` pairs that output with that input (``--save`` may
    replace the ``--resume`` checkpoint it continues). A symlink is judged by
    its target, which is what gets written.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> data = folder / "names.txt"
    >>> _ = data.write_text("emma\\n")
    >>> check_output_paths({"--save": str(folder / "m.json")}, {"--data": str(data)})
    >>> check_output_paths({"--save": str(data)}, {"--data": str(data)})
    Traceback (most recent call last):
    ...
    functional_gpt.shell.PathRefused: --save .../names.txt is the --data file: refusing ...
    >>> check_output_paths({"--save": "/dev/null"}, {})
    Traceback (most recent call last):
    ...
    functional_gpt.shell.PathRefused: cannot write --save /dev/null: it is not a regular file ...
    """
    given = [(flag, path) for flag, path in outputs.items() if path is not None]
    allowed = may_replace or {}
    for flag, path in given:
        _check_writable(path, flag)
    for i, (flag, path) in enumerate(given):
        for other, other_path in given[i + 1:]:
            if _same_file(path, other_path):
                raise PathRefused(f"{flag} and {other} are the same file {path}: "
                                  "give each output its own path")
        for source, source_path in inputs.items():
            if source_path is None or allowed.get(flag) == source:
                continue
            if _same_file(path, source_path):
                raise PathRefused(f"{flag} {path} is the {source} file: refusing to overwrite it")


def write_atomically(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], object], prefix: str | None = None,
) -> None:
    """Write a file whole or not at all: ``write`` fills a temp file beside it, then a rename.

    The temp file is in the target's directory (a rename within one file
    system is atomic), made with the usual mode of a new file, flushed to the
    disk and then renamed over ``path``: a full disk, a kill or an error in
    ``write`` leaves the old file as it was and no temp file behind. A
    symlink is written through: its target gets the new file, the link
    stays. ``prefix`` names the temp file (``.NAME-`` unless given), for a
    writer that recognises its own leftovers. OSError as the system gives it.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> write_atomically(path, lambda f: f.write(b"whole"))
    >>> path.read_text()
    'whole'
    >>> def torn(f):
    ...     f.write(b"half")
    ...     raise OSError(28, "No space left on device")
    >>> write_atomically(path, torn)
    Traceback (most recent call last):
    ...
    OSError: [Errno 28] No space left on device
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('whole', ['a.txt'])
    """
    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-" if prefix is None else prefix, suffix=".tmp",
                               dir=folder)
    try:
        umask = os.umask(0)  # read the umask (only by setting it), then put it back
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode of a new file
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def one_line(message: str) -> str:
    """Return ``message`` with its control characters escaped: always exactly one line.

    >>> one_line("cannot read a\\rb\\tc"), one_line("zoë")
    ('cannot read a\\\\rb\\\\tc', 'zoë')
    """
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
