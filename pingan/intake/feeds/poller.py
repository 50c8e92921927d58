"""Polling the configured feeds on APScheduler (3.11) in the process that runs the
scheduler: exactly one per deployment, held by a lease in the components table.

Each feed's health (ok / down, with the reason) is recorded as component
`feed:<name>`; a failing feed logs one clear line per failed poll."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from pingan.city import load_city
from pingan.clock import utcnow
from pingan.intake.feeds.cap import CapAlert, FeedRejected, parse_document
from pingan.intake.feeds.fetch import JSON_TYPES, XML_TYPES, Fetcher, FetchError
from pingan.intake.feeds.ingest import IngestResult, ingest_alert, ingest_cma_json, ingest_forecast
from pingan.metrics import FEED_POLLS
from pingan.settings import FeedConfig
from pingan.store import Store, mark_component
from pingan.store.schema import feed_state
from playbooks.index import PlaybookIndex

log = logging.getLogger("pingan.feeds")


class FeedPoller:
    def __init__(
        self, feed: FeedConfig, store: Store, index: Callable[[], PlaybookIndex], fetcher: Fetcher
    ) -> None:
        self.feed, self.store, self.index, self.fetcher = feed, store, index, fetcher
        self.seen_links: set[tuple[str, str]] = set()  # (link, updated) already ingested

    def _validators(self, url: str) -> tuple[str | None, str | None]:
        with self.store.read() as conn:
            row = conn.execute(select(feed_state).where(feed_state.c.url == url)).first()
        return (row.etag, row.last_modified) if row else (None, None)

    def _remember(self, url: str, etag: str | None, last_modified: str | None) -> None:
        now = utcnow()
        with self.store.transaction() as conn:
            conn.execute(feed_state.delete().where(feed_state.c.url == url))
            conn.execute(
                feed_state.insert().values(
                    url=url, etag=etag, last_modified=last_modified, updated_at=now
                )
            )

    async def _fetch(self, url: str, accept: tuple[str, ...]) -> bytes | None:
        etag, modified = self._validators(url)
        got = await self.fetcher.get(url, accept, etag, modified, self.feed.timeout_s)
        if got.not_modified:
            return None
        self._remember(url, got.etag, got.last_modified)
        return got.body

    async def poll(self) -> IngestResult:
        """One poll; never raises (the scheduler would only log it less clearly)."""
        name = f"feed:{self.feed.name}"
        try:
            result = await self._poll()
        except (FetchError, FeedRejected) as exc:
            FEED_POLLS.labels(self.feed.name, "down").inc()
            log.error("feed down feed=%s url=%s reason=%s", self.feed.name, self.feed.url, exc)
            mark_component(self.store, name, "down", str(exc))
            return IngestResult(ignored=[str(exc)])
        except Exception as exc:  # a bug must not stop the other feeds
            FEED_POLLS.labels(self.feed.name, "error").inc()
            log.exception("feed poll failed feed=%s", self.feed.name)
            mark_component(self.store, name, "down", f"internal error: {exc}")
            return IngestResult(ignored=[str(exc)])
        FEED_POLLS.labels(self.feed.name, "ok").inc()
        for reason in result.ignored:
            log.info("feed item not acted on feed=%s reason=%s", self.feed.name, reason)
        mark_component(
            self.store, name, "ok", f"{len(result.accepted)} new, {result.duplicates} already seen"
        )
        return result

    async def _poll(self) -> IngestResult:
        now = utcnow()
        kind = self.feed.kind
        if kind == "open-meteo":
            total = IngestResult()
            districts = load_city().districts
            for code in self.feed.districts:
                district = districts[code]
                url = self.feed.url.format(lat=district.lat, lon=district.lon)
                body = await self._fetch(url, JSON_TYPES)
                if body is not None:
                    _merge(total, ingest_forecast(self.store, self.index(), body, code, now))
            return total
        if kind == "cma-json":
            body = await self._fetch(self.feed.url, JSON_TYPES)
            return (
                IngestResult()
                if body is None
                else ingest_cma_json(self.store, body, self.feed.name, now)
            )
        body = await self._fetch(self.feed.url, XML_TYPES)
        if body is None:
            return IngestResult()
        document = parse_document(body)
        if isinstance(document, CapAlert):
            return ingest_alert(self.store, document, self.feed.name, now)
        total = IngestResult(ignored=list(document.skipped))
        for entry in document.entries:
            if (entry.link, entry.updated) in self.seen_links:
                continue
            if entry.alert is not None:
                _merge(total, ingest_alert(self.store, entry.alert, self.feed.name, now))
            else:
                linked = await self._fetch(entry.link, XML_TYPES)
                if linked is not None:
                    document_alert = parse_document(linked)
                    if isinstance(document_alert, CapAlert):
                        _merge(total, ingest_alert(self.store, document_alert, self.feed.name, now))
            self.seen_links.add((entry.link, entry.updated))
        return total


def _merge(total: IngestResult, part: IngestResult) -> None:
    total.accepted += part.accepted
    total.duplicates += part.duplicates
    total.ignored += part.ignored


def build_scheduler(
    feeds: tuple[FeedConfig, ...],
    store: Store,
    index: Callable[[], PlaybookIndex],
    client: httpx.AsyncClient,
) -> tuple[AsyncIOScheduler, list[FeedPoller]]:
    scheduler = AsyncIOScheduler(timezone="UTC")
    pollers = []
    now = utcnow()
    for feed in feeds:
        poller = FeedPoller(feed, store, index, Fetcher(client, retries=feed.retries))
        pollers.append(poller)
        scheduler.add_job(
            poller.poll,
            "interval",
            seconds=feed.interval_s,
            id=f"feed:{feed.name}",
            max_instances=1,
            coalesce=True,
            next_run_time=now,
            replace_existing=True,
        )
    return scheduler, pollers
