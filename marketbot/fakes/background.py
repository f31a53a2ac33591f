"""An aiohttp server on its own event loop in a daemon thread: how the local stand-ins run beside tests.

Subclasses set the attributes below in __init__ and implement `_startup` (bind, build the app) and
`_shutdown`; `start()` returns once the port listens and re-raises a startup failure in the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Self


class BackgroundServer:
    server_name = "server"  # for thread names and error messages, e.g. "Telegram"

    _thread: threading.Thread | None
    _loop: asyncio.AbstractEventLoop | None
    _ready: threading.Event
    _startup_error: BaseException | None
    _stopped: bool

    async def _startup(self) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Serve from a daemon thread with its own event loop; returns once the port is listening."""
        if self._thread is not None:
            raise RuntimeError(f"the {self.server_name} stand-in can only be started once")
        self._thread = threading.Thread(
            target=self._run, name=f"fake-{self.server_name.lower()}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout=15):
            raise RuntimeError(f"fake {self.server_name} server did not start within 15 s")
        if self._startup_error is not None:
            raise RuntimeError(f"fake {self.server_name} server failed to start: {self._startup_error}")
        return self

    def stop(self) -> None:
        """Stop serving and delivering; safe to call more than once."""
        if self._thread is None or self._stopped:
            return
        self._stopped = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=15)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to the thread that called start()
            self._startup_error = exc
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._shutdown())
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.close()
