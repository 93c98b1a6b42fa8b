"""Infinite queries: the data is ``{"pages": [...], "page_params": [...]}``.

A first fetch loads the page at ``initial_page_param``. ``direction="forward"`` appends the
page after the last (``get_next_page_param``), ``"backward"`` prepends the one before the first
(``get_previous_page_param``); ``None`` (a refetch) reloads every cached page in order, from the
first page's param, so pages stay consistent with each other; the query function sees
``direction="forward"`` for the first page and for every refetched page, as in TanStack. ``max_pages`` drops pages from
the far end. A ``None`` next or previous param means there is no such page. Pages and page
params must be JSON-like, since they are stored in the document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from ..values import MISSING
from .options import InfiniteOptions

Direction = Literal["forward", "backward"] | None
FetchPage = Callable[[Any, Direction], Awaitable[Any]]


def next_page_param(inf: InfiniteOptions, pages: list[Any], params: list[Any]) -> Any:
    if not pages:
        return inf.initial_page_param
    return inf.get_next_page_param(pages[-1], pages, params[-1], params)


def previous_page_param(inf: InfiniteOptions, pages: list[Any], params: list[Any]) -> Any:
    if not pages or inf.get_previous_page_param is None:
        return None
    return inf.get_previous_page_param(pages[0], pages, params[0], params)


def split(data: Any) -> tuple[list[Any], list[Any]]:
    if data is MISSING or not isinstance(data, dict):
        return [], []
    return list(data.get("pages", [])), list(data.get("page_params", []))


async def fetch_pages(inf: InfiniteOptions, old: Any, direction: Direction, fetch_page: FetchPage) -> Any:
    pages, params = split(old)
    if direction == "forward" and pages:
        param = next_page_param(inf, pages, params)
        if param is None:
            return old
        pages.append(await fetch_page(param, "forward"))
        params.append(param)
        if inf.max_pages is not None and len(pages) > inf.max_pages:
            pages, params = pages[-inf.max_pages :], params[-inf.max_pages :]
    elif direction == "backward" and pages:
        param = previous_page_param(inf, pages, params)
        if param is None:
            return old
        pages.insert(0, await fetch_page(param, "backward"))
        params.insert(0, param)
        if inf.max_pages is not None and len(pages) > inf.max_pages:
            pages, params = pages[: inf.max_pages], params[: inf.max_pages]
    else:
        count = max(1, len(pages))
        new_pages: list[Any] = []
        new_params: list[Any] = []
        param = params[0] if params else inf.initial_page_param
        for i in range(count):
            if i > 0:
                param = next_page_param(inf, new_pages, new_params)
                if param is None:
                    break
            new_pages.append(await fetch_page(param, "forward"))  # as TanStack
            new_params.append(param)
        pages, params = new_pages, new_params
    return {"pages": pages, "page_params": params}
