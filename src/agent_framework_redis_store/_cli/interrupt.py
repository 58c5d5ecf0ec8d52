"""Ctrl-C: the first one stops a command within a fraction of a second, exit status 130.

``asyncio.run`` answers the first SIGINT by cancelling the command's task once. A cancellation
can be lost on the way: on Python 3.11, ``asyncio.wait_for`` (which redis-py wraps around every
socket write when the client has a socket timeout) returns the result of an inner call that
finished together with the cancellation and drops the cancellation (python/cpython#86296), and
an export or import of many threads then ran on to its end. Here the first Ctrl-C cancels the
task and cancels it again every ``RECANCEL_SECONDS`` until it has stopped; its cleanup
(``finally``, ``async with``) runs as for any cancellation.

A question on the terminal (``confirm.ask``) reads stdin on the event loop's thread, where the
loop cannot see a signal: ``answering`` gives Ctrl-C back to Python's own handler meanwhile, so
that it ends the read at once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["EXIT_STATUS", "RECANCEL_SECONDS", "Interrupted", "answering", "run_until_interrupted"]

T = TypeVar("T")

EXIT_STATUS = 130  # 128 + SIGINT, as a shell reports a command that Ctrl-C stopped
RECANCEL_SECONDS = 0.1

# The running command's loop and SIGINT callback, while one runs.
_watching: tuple[asyncio.AbstractEventLoop, Callable[[], None]] | None = None


class Interrupted(Exception):
    """The operator pressed Ctrl-C and the command stopped."""


def run_until_interrupted(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``; raises ``Interrupted`` once the first Ctrl-C has stopped it.

    Whatever ``main`` raised after the Ctrl-C (the cancellation, or an error it caused, such as a
    connection cut mid-reply) becomes ``Interrupted``: the operator asked it to stop, and it did.
    """
    interrupted = False

    async def watched() -> T:
        global _watching
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def cancel() -> None:
            if not task.done():
                task.cancel()
                loop.call_later(RECANCEL_SECONDS, cancel)

        def interrupt() -> None:
            nonlocal interrupted
            if not interrupted:
                interrupted = True
                cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, interrupt)
        except (NotImplementedError, RuntimeError, ValueError):
            # No loop signal handlers here (Windows, or not the main thread): asyncio.run's own.
            return await main
        _watching = (loop, interrupt)
        try:
            return await main
        finally:
            _watching = None
            loop.remove_signal_handler(signal.SIGINT)

    try:
        return asyncio.run(watched())
    except KeyboardInterrupt:  # asyncio.run's handler, where the loop has none of its own
        raise Interrupted from None
    except BaseException:
        if interrupted:
            raise Interrupted from None
        raise


@contextmanager
def answering() -> Iterator[None]:
    """While a question waits for its answer, Ctrl-C raises ``KeyboardInterrupt`` in the read."""
    watching = _watching
    if watching is None:
        yield
        return
    loop, interrupt = watching
    loop.remove_signal_handler(signal.SIGINT)  # Python's default handler again
    try:
        yield
    finally:
        loop.add_signal_handler(signal.SIGINT, interrupt)
