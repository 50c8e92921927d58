"""The HTTP edge in-process on a real store, for tests of one route's behaviour that
need no broker or worker: the app the server runs, behind aiohttp's test client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp.test_utils import TestClient, TestServer

from pingan.http.app import build_http_app
from pingan.http.context import Context
from pingan.settings import Settings
from pingan.store import Store
from playbooks.registry import PlaybookRegistry
from tests.conftest import PLAYBOOKS_DIR

TOKEN = "alice:test-token-alice"  # a named API token (acts as the person "alice")
BEARER = {"Authorization": "Bearer test-token-alice"}
T = TypeVar("T")


def with_client(
    store: Store, data_dir: Path, test: Callable[[TestClient[Any, Any]], Awaitable[T]]
) -> T:
    """Run `test` against the app on `store`; returns what it returns."""

    async def main() -> T:
        context = Context(
            Settings(data_dir=data_dir),
            store,
            PlaybookRegistry(PLAYBOOKS_DIR),
            (TOKEN,),
            ("test-open311-key",),
        )
        async with TestClient(TestServer(build_http_app(context))) as client:
            return await test(client)

    return asyncio.run(main())
