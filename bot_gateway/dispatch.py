"""The gateway's aiogram dispatcher: our routers, with their plain-function filters evaluated inline.

aiogram runs every filter that is not a coroutine function (every magic filter such as
`F.chat.type == "private"`) through `asyncio.to_thread`, because it cannot know the function is cheap. Ours
are attribute reads on the update, microseconds each, yet a `/start` went through two thread hops and a
plain text message through seven: under load that was a large share of the gateway's CPU, spent handing
work to threads that then fought the event loop for the GIL. Here they are called directly on the loop;
which handler matches, and so which command is produced, does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiogram import Dispatcher, Router
from aiogram.dispatcher.event.handler import FilterObject, HandlerObject

from bot_gateway.routers import build_routers


def build_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher(disable_fsm=True)
    dispatcher.include_routers(*build_routers())
    run_sync_filters_inline(dispatcher.chain_tail)
    return dispatcher


def run_sync_filters_inline(routers: Iterable[Router]) -> int:
    """Make each synchronous filter of these routers awaitable in place; returns how many were changed."""
    changed = 0
    for router in routers:
        for observer in router.observers.values():
            # Root filters (`router.message.filter(...)`) sit on the observer's own handler object.
            root: HandlerObject | None = getattr(observer, "_handler", None)
            handlers = [*observer.handlers, *([root] if root is not None else [])]
            for handler in handlers:
                for event_filter in handler.filters or ():
                    changed += _inline(event_filter)
    return changed


def _inline(event_filter: FilterObject) -> int:
    if event_filter.awaitable:
        return 0
    # `call` still passes only the keyword arguments the original function declares (its params, computed
    # from its signature, are kept), so the function sees exactly what it saw in the thread.
    event_filter.callback = _awaitable(event_filter.callback)
    event_filter.awaitable = True
    return 1


def _awaitable(function: Callable[..., Any]) -> Callable[..., Any]:
    async def call_inline(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return call_inline
