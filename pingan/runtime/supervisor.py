"""`pingan run`: the whole system in one command.

Starts, in order: the database schema and roster, the embedded broker (unless
PINGAN_KAFKA_URL names one), the topics, the Faust worker as a child process, the
outbox relay and the HTTP server in this process. Prints one "ready" line when it can
take traffic. SIGINT/SIGTERM stop everything in reverse order and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from aiohttp import web
from sqlalchemy.engine import make_url

from pingan.actions import sync_roster
from pingan.clock import utcnow
from pingan.core import topics
from pingan.crews import RosterError, load_roster
from pingan.http.app import build_http_app
from pingan.http.context import Context
from pingan.http.ratelimit import RateLimits
from pingan.intake.feeds.poller import build_scheduler
from pingan.runtime.broker import (
    BrokerError,
    EmbeddedBroker,
    ensure_topics,
    resolve_broker_bin,
    start_embedded_broker,
)
from pingan.runtime.children import spawn, stop
from pingan.runtime.private import make_private
from pingan.runtime.relay import OutboxRelay
from pingan.runtime.secrets import ensure_secret, named_tokens, tokens_or_generated
from pingan.settings import Settings
from pingan.store import (
    HEARTBEAT_S,
    LEASE_RENEW_S,
    LEASE_S,
    Store,
    as_utc,
    component_row,
    component_state,
    mark_component,
    take_lease,
)
from playbooks.loader import PlaybookError
from playbooks.registry import PlaybookRegistry
from streams.watchdog import STALLED_EXIT_CODE

log = logging.getLogger("pingan.run")
WORKER_READY_TIMEOUT_S = 90
HEALTHY_RUN_S = 60.0  # a worker that ran this long resets the restart backoff
HEARTBEAT_GRACE_S = 30.0  # past its own stall limit, a silent worker is killed


class StartupError(RuntimeError):
    pass


@dataclass
class Running:
    """What `run` hands to an optional scenario (the demo) once it is ready."""

    settings: Settings
    base_url: str
    api_token: str
    open311_key: str
    store: Store


Scenario = Callable[[Running], Awaitable[None]]


def bootstrap_of(kafka_url: str) -> str:
    return kafka_url.split("://", 1)[-1]


def _worker_env(settings: Settings, bootstrap: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.env())
    env["PINGAN_KAFKA_URL"] = bootstrap
    env["PINGAN_DATABASE_URL"] = settings.effective_database_url
    return env


def _spawn_worker(settings: Settings, bootstrap: str) -> subprocess.Popen[bytes]:
    log_path = settings.data_dir / "worker.log"
    return spawn(
        [sys.executable, "-m", "pingan", "worker"], _worker_env(settings, bootstrap), log_path
    )


async def _wait_worker_ready(store: Store, worker: subprocess.Popen[bytes], log_hint: str) -> None:
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise StartupError(f"worker exited with code {worker.returncode}; see {log_hint}")
        if await asyncio.to_thread(component_state, store, "worker") == "ready":
            return
        await asyncio.sleep(0.2)
    raise StartupError(f"worker not ready after {WORKER_READY_TIMEOUT_S}s; see {log_hint}")


async def run(
    settings: Settings,
    scenario: Scenario | None = None,
    exit_after_scenario: bool = False,
    start_worker: bool = True,
) -> int:
    """Returns the process exit code. `start_worker=False` is `pingan http` in the
    scaled deployment, where workers run as their own services."""
    make_private(settings.data_dir)  # 0700/0600 before the database or a log is opened
    try:
        playbooks = PlaybookRegistry(settings.playbooks_dir)
        roster = load_roster(settings.roster_file)
    except (PlaybookError, RosterError) as exc:
        print(f"pingan: cannot start:\n{exc}", file=sys.stderr)
        return 2
    store = Store(settings.effective_database_url)
    store.create_schema()
    sync_roster(store, roster, utcnow())
    api_tokens, api_generated = tokens_or_generated(
        settings.api_tokens, settings.data_dir, "api_token"
    )
    api_tokens += named_tokens(settings.data_dir)  # `pingan tokens add NAME`
    keys, key_generated = tokens_or_generated(
        settings.open311_keys, settings.data_dir, "open311_key"
    )

    broker: EmbeddedBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    relay: OutboxRelay | None = None
    runner: web.AppRunner | None = None
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    tasks: list[asyncio.Task[None]] = []
    exit_code = 0
    try:
        if settings.kafka_url:
            bootstrap = bootstrap_of(settings.kafka_url)
        else:
            binary = resolve_broker_bin(settings.broker_bin)
            broker = await asyncio.to_thread(
                start_embedded_broker, binary, settings.data_dir / "broker.log"
            )
            bootstrap = broker.bootstrap
        await asyncio.to_thread(
            ensure_topics,
            bootstrap,
            topics.ALL,
            settings.topic_partitions,
            settings.topic_replication_factor,
        )

        if start_worker:
            mark_component(store, "worker", "starting")
            worker = _spawn_worker(settings, bootstrap)

        relay = OutboxRelay(store, bootstrap)
        # A fresh embedded broker has no topics' contents: publish again whatever no
        # consumer has processed yet. Against a durable Kafka this costs duplicates only.
        await asyncio.to_thread(relay.requeue_unprocessed)
        tasks.append(
            asyncio.create_task(
                relay.run(
                    stopping,
                    settings.relay_interval_s,
                    settings.redeliver_after_s,
                    settings.retention_days,
                )
            )
        )

        limits = RateLimits(
            {"key": settings.open311_rate_per_min, "caller": settings.caller_rate_per_min}
        )
        twilio_token = settings.twilio_auth_token or ensure_secret(
            settings.data_dir, "twilio_auth_token"
        )
        link_secret = settings.link_secret or ensure_secret(settings.data_dir, "link_secret")
        context = Context(
            settings, store, playbooks, api_tokens, keys, limits, twilio_token, link_secret
        )
        context.bootstrap = bootstrap
        tasks.append(asyncio.create_task(_refresh_playbooks(playbooks, stopping)))
        runner = web.AppRunner(build_http_app(context), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        port = runner.addresses[0][1]
        base_url = f"http://{settings.http_host}:{port}"

        if worker is not None:
            await _wait_worker_ready(store, worker, str(settings.data_dir / "worker.log"))
        _print_ready(
            settings,
            base_url,
            bootstrap,
            broker is not None,
            api_tokens[0] if api_generated else None,
            keys[0] if key_generated else None,
        )

        if settings.feeds and settings.run_scheduler:
            tasks.append(asyncio.create_task(_feed_scheduler(settings, store, playbooks, stopping)))

        if scenario:
            running = Running(settings, base_url, api_tokens[0], keys[0], store)
            tasks.append(
                asyncio.create_task(
                    _scenario_then(scenario, running, stopping if exit_after_scenario else None)
                )
            )

        worker, broker = await _watch(stopping, settings, bootstrap, worker, broker, relay, store)
    except (BrokerError, StartupError) as exc:
        log.error("cannot start: %s", exc)
        print(f"pingan: cannot start: {exc}", file=sys.stderr)
        exit_code = 1
    finally:
        stopping.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception as exc:
                log.error("task ended with error: %s", exc)
                exit_code = exit_code or 1
        if runner is not None:
            await runner.cleanup()
        if worker is not None:
            await asyncio.to_thread(stop, worker, 20)
        if relay is not None:
            await asyncio.to_thread(relay.close)
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        if start_worker:
            mark_component(store, "worker", "stopped")
        store.dispose()
        log.info("stopped exit_code=%d", exit_code)
    return exit_code


async def _feed_scheduler(
    settings: Settings, store: Store, registry: PlaybookRegistry, stopping: asyncio.Event
) -> None:
    """Poll the feeds while this process holds the scheduler lease: exactly one
    scheduler per deployment. Others wait and take over when the holder stops or its
    lease lapses (LEASE_S); a holder that lost its lease pauses."""
    client = httpx.AsyncClient(follow_redirects=True, headers={"User-Agent": "pingan-feeds/0.1"})
    scheduler, _ = build_scheduler(settings.feeds, store, lambda: registry.index, client)
    names = ",".join(f.name for f in settings.feeds)
    held, first = False, True
    try:
        while not stopping.is_set():
            holds = await asyncio.to_thread(take_lease, store, "scheduler", LEASE_S, utcnow())
            if holds and not held:
                if scheduler.running:
                    scheduler.resume()
                else:
                    scheduler.start()
                log.info("feed scheduler started feeds=%s", names)
            elif held and not holds:
                scheduler.pause()
                log.warning("feed scheduler lease lost to another process; polling paused")
            elif first and not holds:
                log.info("another process runs the feed scheduler; this one waits")
            held, first = holds, False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=LEASE_RENEW_S)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await client.aclose()
        if held:
            mark_component(store, "scheduler", "stopped")


async def _refresh_playbooks(registry: PlaybookRegistry, stopping: asyncio.Event) -> None:
    """The HTTP side's view of the playbooks (services list, /api/playbooks)."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=2.0)
        await asyncio.to_thread(registry.refresh)


async def _scenario_then(
    scenario: Scenario, running: Running, stop_after: asyncio.Event | None
) -> None:
    try:
        await scenario(running)
    finally:
        if stop_after is not None:
            stop_after.set()


async def _watch(
    stopping: asyncio.Event,
    settings: Settings,
    bootstrap: str,
    worker: subprocess.Popen[bytes] | None,
    broker: EmbeddedBroker | None,
    relay: OutboxRelay,
    store: Store,
) -> tuple[subprocess.Popen[bytes] | None, EmbeddedBroker | None]:
    """Until asked to stop: restart a worker that died or stopped its heartbeat (with
    a backoff that resets after a healthy run); restart an embedded broker that died
    on the same port, refill its topics from the outbox and let the worker rejoin, so
    intake never stops taking reports."""
    backoff = 1.0
    worker_started = time.monotonic()
    last_look = 0.0
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=0.5)
        if stopping.is_set():
            break
        if broker is not None and not broker.alive():
            log.error(
                "embedded broker exited code=%s; restarting it on port %s",
                broker.proc.returncode,
                broker.port,
            )
            try:
                broker = await asyncio.to_thread(
                    start_embedded_broker,
                    resolve_broker_bin(settings.broker_bin),
                    settings.data_dir / "broker.log",
                    broker.port,
                )
                await asyncio.to_thread(
                    ensure_topics,
                    bootstrap,
                    topics.ALL,
                    settings.topic_partitions,
                    settings.topic_replication_factor,
                )
                await asyncio.to_thread(relay.reconnect)
            except BrokerError as exc:
                log.error("broker restart failed (will try again): %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            if worker is not None:
                await asyncio.to_thread(stop, worker, 20)  # it rejoins the new broker
        if worker is None:
            continue
        if worker.poll() is None and time.monotonic() - last_look >= HEARTBEAT_S:
            last_look = time.monotonic()
            if await asyncio.to_thread(_heartbeat_lost, store, settings):
                log.error(
                    "worker pid=%s wrote no heartbeat for over %.0fs; killing it",
                    worker.pid,
                    settings.worker_stall_after_s + HEARTBEAT_GRACE_S,
                )
                await asyncio.to_thread(stop, worker, 0)
        if worker.poll() is not None and not stopping.is_set():
            if time.monotonic() - worker_started >= HEALTHY_RUN_S:
                backoff = 1.0
            why = (
                " (stalled: it stopped consuming)" if worker.returncode == STALLED_EXIT_CODE else ""
            )
            log.error(
                "worker exited code=%s%s; restarting in %.0fs", worker.returncode, why, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30)
            mark_component(store, "worker", "starting")
            worker = _spawn_worker(settings, bootstrap)
            worker_started = time.monotonic()
    return worker, broker


def _heartbeat_lost(store: Store, settings: Settings) -> bool:
    """A worker that was ready writes its heartbeat every few seconds; one silent for
    longer than its own watchdog allows is frozen beyond the watchdog's reach."""
    row = component_row(store, "worker")
    if row is None or row.state != "ready":
        return False
    silent_s = (utcnow() - as_utc(row.updated_at)).total_seconds()
    return silent_s > settings.worker_stall_after_s + HEARTBEAT_GRACE_S


def _print_ready(
    settings: Settings,
    base_url: str,
    bootstrap: str,
    embedded: bool,
    new_token: str | None,
    new_key: str | None,
) -> None:
    where = "embedded" if embedded else "external"
    # The line goes to the container's log: never the database password.
    database = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    print(f"ready: {base_url}  (broker {bootstrap} {where}, database {database})", flush=True)
    if new_token:
        print(f"  API token (Authorization: Bearer …): {new_token}", flush=True)
    if new_key:
        print(f"  Open311 api_key: {new_key}", flush=True)
    print("  Ctrl-C stops everything.", flush=True)
