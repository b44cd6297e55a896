"""``python -m functional_gpt`` and ``functional-gpt``: the command line (``functional_gpt.cli``).

The stop signals are caught first, before the tenth of a second that
importing the command line takes: a Ctrl-C, SIGTERM or SIGHUP that comes
while the program loads ends it with one line and its usual status (130,
143, 129), not a ``KeyboardInterrupt`` traceback or a silent kill. Only
``shell`` (the standard library and nothing else) is imported before.

One ``StopSignals`` serves the whole process, the command line's run
included, so a stop is reported once: a terminal that hangs up sends
SIGHUP more than once (the kernel, then the login shell), and the second
must not print a second line after the command has answered the first.
"""

from __future__ import annotations

import signal
import sys

from .shell import STOP_SIGNALS, Stopped, StopSignals, say, signal_status, stop_words

__all__ = ["main"]


def main() -> int:
    """Run the command line on ``sys.argv``, the stop signals caught from its first moment.

    Returns the exit status. Once the command is over, a late stop signal
    changes nothing. The handlers are never put back: this is the process's
    entry, and going back to the default action would let a late SIGHUP
    kill it before it exits with its status.
    """
    stops = StopSignals()
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, stops.record)
        from .cli import main as command_line  # the heavy imports, under the handlers

        status = command_line(stops=stops)
        stops.end()  # a signal before this line stopped the command; one after it is only noted
    except Stopped as e:
        say(f"functional-gpt: {stop_words(e.signum)}")
        status = signal_status(e.signum)
    except MemoryError:  # while loading (the command line catches its own)
        say("functional-gpt: error: out of memory while loading the program")
        status = 1
    stops.end()  # after a stop or an error too: whatever comes now is only noted
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # the work is done; only Python's exit is left
    return status


if __name__ == "__main__":
    sys.exit(main())
