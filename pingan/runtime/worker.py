"""`pingan worker`: the Faust worker process (started by `pingan run`, or on its own
against an external Kafka in the scaled deployment)."""

from __future__ import annotations

import sys

import faust
from prometheus_client import start_http_server

from alerts.channels.factory import build_channels
from pingan.links import CrewLinks
from pingan.logs import logging_config
from pingan.metrics import REGISTRY, watch_store
from pingan.runtime.secrets import ensure_secret
from pingan.settings import Settings
from pingan.store import Store, mark_component
from playbooks.loader import PlaybookError
from playbooks.registry import PlaybookRegistry
from streams.app import build_app


def run_worker(settings: Settings) -> int:
    if not settings.kafka_url:
        print("pingan worker: PINGAN_KAFKA_URL is required (`pingan run` sets it)", file=sys.stderr)
        return 2
    try:
        registry = PlaybookRegistry(settings.playbooks_dir)
    except PlaybookError as exc:
        print(f"pingan worker: cannot start:\n{exc}", file=sys.stderr)
        return 2
    store = Store(settings.effective_database_url)
    store.create_schema()
    mark_component(store, "playbooks", "ok", registry.versions())
    links = CrewLinks(
        settings.link_secret or ensure_secret(settings.data_dir, "link_secret"),
        settings.effective_public_url,
    )
    twilio_token = settings.twilio_auth_token or ensure_secret(
        settings.data_dir, "twilio_auth_token"
    )
    channels = build_channels(settings, store, twilio_token)
    built = build_app(settings, store, registry, channels["sms"], links=links, channels=channels)
    worker = faust.Worker(
        built.app,
        loglevel=settings.log_level.lower(),
        logging_config=logging_config(settings.log_level, settings.log_format),
        quiet=True,
    )
    if settings.worker_metrics_port:
        watch_store(store)
        start_http_server(settings.worker_metrics_port, registry=REGISTRY)
    built.watchdog.start()
    try:
        worker.execute_from_commandline()  # returns via SystemExit when stopped
    finally:
        built.watchdog.stop()
    return 0
