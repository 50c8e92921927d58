"""A red warning to 1,000,000 subscribers in one district, through an in-process channel
with no rate limit, on the real store (SQLite): the same chunk function the send agents
run, each chunk as its event would deliver it."""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from alerts.channels.base import Message
from alerts.citizen_warnings import approve, create_draft
from alerts.fanout import send_chunk
from pingan.store import Store
from pingan.store.schema import outbox, subscribers

SUBSCRIBERS = 1_000_000


class MemoryChannel:
    """Counts what it is asked to send; a second send of one key is a duplicate."""

    name = "sms"

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    async def send(self, message: Message) -> str:
        self.seen[message.idempotency_key] += 1
        return f"mem-{len(self.seen)}"


def _fill(store: Store, n: int) -> None:
    now = datetime.now(UTC)
    batch = []
    with store.transaction() as conn:
        for i in range(n):
            batch.append(
                {
                    "phone": f"+86138{i:08d}",
                    "home_district": "yuanhui",
                    "language": "zh",
                    "channels": "sms",
                    "consent_source": "bench",
                    "consent_at": now,
                }
            )
            if len(batch) == 50_000:
                conn.execute(insert(subscribers), batch)
                batch = []
        if batch:
            conn.execute(insert(subscribers), batch)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fanout(n: int = SUBSCRIBERS) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.create_schema()
        print(f"bench fanout: inserting {n} subscribers", file=sys.stderr, flush=True)
        _fill(store, n)
        now = datetime.now(UTC)
        warning = create_draft(
            store, "rainstorm", "red", ["yuanhui"], "rainstorm-red", ["sms"], "drafter", now
        )
        channel = MemoryChannel()
        start = time.perf_counter()
        approve(store, warning["id"], "approver", now)
        with store.read() as conn:
            chunks = [
                row.payload
                for row in conn.execute(
                    select(outbox.c.payload)
                    .where(outbox.c.topic == "pingan.sends.urgent")
                    .order_by(outbox.c.id)
                )
            ]
        first: float | None = None
        sent = 0
        for n_chunk, chunk in enumerate(chunks, start=1):
            result = asyncio.run(
                send_chunk(
                    store,
                    {"sms": channel},
                    chunk["warning_id"],
                    chunk["from_id"],
                    chunk["to_id"],
                    now,
                    clock=time.perf_counter,
                )
            )
            first = first or result.first_send_at
            sent += result.sent
            if n_chunk % 40 == 0:
                print(f"bench fanout: {sent}/{n} sent", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - start
        duplicates = sum(c - 1 for c in channel.seen.values() if c > 1)
        store.dispose()
    return [
        {
            "bench": "fanout_first_send_s",
            "value": round((first or start) - start, 3),
            "unit": "s",
            "target": "<= 2",
        },
        {
            "bench": "fanout_sends_per_s",
            "value": round(sent / elapsed),
            "unit": "sends/s",
            "sent": sent,
            "elapsed_s": round(elapsed, 1),
            "target": ">= 10000",
        },
        {
            "bench": "fanout_peak_rss_mb",
            "value": round(rss_mb(), 1),
            "unit": "MB",
            "target": "<= 512",
        },
        {"bench": "fanout_duplicates", "value": duplicates, "unit": "count", "target": "0"},
    ]


def subscriber_import(n: int = SUBSCRIBERS) -> list[dict]:
    """Importing a CSV of a million subscribers, validated row by row."""
    import io

    from alerts.subscribers import import_csv

    lines = ["phone,openid,home_district,work_district,language,channels,consent_source,consent_at"]
    lines += [f"138{i:08d},,yuanhui,,zh,sms,bench," for i in range(n)]
    text = "\n".join(lines) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'import.db'}")
        store.create_schema()
        start = time.perf_counter()
        result = import_csv(store, io.StringIO(text), datetime.now(UTC))
        elapsed = time.perf_counter() - start
        store.dispose()
    return [
        {
            "bench": "subscriber_import_rows_per_s",
            "value": round(n / elapsed),
            "unit": "rows/s",
            "rows": n,
            "imported": result.imported,
            "elapsed_s": round(elapsed, 1),
            "target": "1,000,000 rows in minutes",
        }
    ]


class TimedChannel(MemoryChannel):
    """A MemoryChannel that also notes when each send happened."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    async def send(self, message: Message) -> str:
        self.at.append(time.perf_counter())
        return await super().send(message)


def fanout_paced(n: int = 1500) -> list[dict]:
    """A warning to `n` subscribers through an SMS channel paced from the settings at
    100/s (burst 10): the rate the pipeline achieves, and duplicates."""
    from alerts.channels.factory import sms_pace
    from alerts.pacing import paced
    from pingan.settings import load_settings

    settings = load_settings({"PINGAN_SMS_RATE_PER_S": "100", "PINGAN_SMS_BURST": "10"})
    pace = sms_pace(settings)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.create_schema()
        _fill(store, n)
        now = datetime.now(UTC)
        warning = create_draft(
            store, "rainstorm", "red", ["yuanhui"], "rainstorm-red", ["sms"], "drafter", now
        )
        approve(store, warning["id"], "approver", now)
        with store.read() as conn:
            chunks = [
                row.payload
                for row in conn.execute(
                    select(outbox.c.payload)
                    .where(outbox.c.topic == "pingan.sends.urgent")
                    .order_by(outbox.c.id)
                )
            ]
        channel = TimedChannel()
        print(f"bench fanout_paced: {n} sends at {pace.rate_per_s}/s", file=sys.stderr, flush=True)

        async def send_all() -> int:
            sms = paced(channel, pace)  # one sender for the whole warning
            sent = 0
            for chunk in chunks:
                result = await send_chunk(
                    store,
                    {"sms": sms},
                    chunk["warning_id"],
                    chunk["from_id"],
                    chunk["to_id"],
                    now,
                )
                sent += result.sent
            return sent

        sent = asyncio.run(send_all())
        store.dispose()
    span = channel.at[-1] - channel.at[0]
    duplicates = sum(c - 1 for c in channel.seen.values() if c > 1)
    return [
        {
            "bench": "fanout_paced_sends_per_s",
            "value": round((len(channel.at) - 1) / span, 1),
            "unit": "sends/s",
            "pace_per_s": pace.rate_per_s,
            "burst": pace.burst,
            "sent": sent,
            "duplicates": duplicates,
            "elapsed_s": round(span, 1),
            "target": "within 10% of 100, 0 duplicates",
        }
    ]
