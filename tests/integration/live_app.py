"""The HTTP app of `pingan run`, served in-process on a free localhost port over a test
store: for routes whose tests need a real HTTP request (signed webhooks, logins,
paging) but no broker or worker. Requests go through the real middlewares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pingan.http.app import build_http_app
from pingan.http.context import Context
from pingan.settings import Settings
from pingan.store import Store
from playbooks.registry import PlaybookRegistry
from tests.e2e.harness import free_port, serving

API_TOKEN = "http-test-token"
TWILIO_TOKEN = "http-test-twilio"


@dataclass
class LiveApp:
    base_url: str
    http: httpx.Client
    context: Context


@contextmanager
def live_app(
    store: Store, registry: PlaybookRegistry, data_dir: Path, **settings: Any
) -> Iterator[LiveApp]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    context = Context(
        Settings(data_dir=data_dir, http_port=port, public_url=base_url, **settings),
        store,
        registry,
        api_tokens=(API_TOKEN,),
        open311_keys=("http-test-key",),
        twilio_auth_token=TWILIO_TOKEN,
        link_secret="http-test-link-secret",
    )
    with (
        serving(build_http_app(context), port),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        yield LiveApp(base_url, http, context)
