"""Issue 13's acceptance: a Twilio outage while crews are dispatched and a red warning
goes to 2,000 subscribers. The real twilio SDK talks to a local server speaking
Twilio's Messages API (its real JSON error bodies) that answers 500, then 429 with
Retry-After, then hangs (some requests it takes and answers too late, as Twilio did
after 20 s), then recovers. The worker's sender loop runs as in production; the
handlers only queue. The outage window is scaled from 60 s to 3 × 2 s, the retry
policies with it.

After recovery every crew message and every warning message has been taken by the
provider exactly once (counted at the server by recipient and text), and no ledger row
said 'sent' before the provider took it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import insert, select

from alerts.channels.twilio_sms import TwilioSmsChannel
from alerts.pacing import Pace, paced
from alerts.pipeline import Sender
from alerts.retry import RetryPolicy
from pingan.actions import sync_roster
from pingan.clock import utcnow
from pingan.core import topics
from pingan.core.events import WarningSignal
from pingan.crews import load_roster
from pingan.intake.accept import accept_report, accept_warning
from pingan.store import Store
from pingan.store.schema import outbox, sends, subscribers
from playbooks.index import PlaybookIndex
from streams import handlers
from tests.conftest import ROSTER
from tests.e2e.harness import serving, twilio_message_page
from tests.integration.test_handlers import draft

ACCOUNT = "AC" + "0123456789abcdef" * 2
PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
PHASE_S = 2.0  # each of 500, 429, hang (60 s in the issue, scaled)
SUBSCRIBERS = 2000
# Twilio's error bodies (https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions)
ERROR_500 = {
    "code": 20500,
    "message": "An internal server error has occurred",
    "more_info": "https://www.twilio.com/docs/errors/20500",
    "status": 500,
}
ERROR_429 = {
    "code": 20429,
    "message": "Too Many Requests",
    "more_info": "https://www.twilio.com/docs/errors/20429",
    "status": 429,
}


class OutageTwilio:
    """Twilio's Messages resource with an outage in three phases from `start()`."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.taken: list[dict[str, Any]] = []
        self.hung = 0
        self.taken_while_hanging = 0

    def start(self) -> None:
        self.t0 = time.monotonic()

    def phase(self) -> int:
        if self.t0 is None:
            return 0
        return min(int((time.monotonic() - self.t0) // PHASE_S), 3)

    def recovered(self) -> bool:
        return self.phase() == 3

    def take(self, to: str, body: str) -> dict[str, Any]:
        sid = f"SM{len(self.taken) + 1:032d}"
        now = datetime.now(UTC)
        record = {
            "sid": sid,
            "account_sid": ACCOUNT,
            "to": to,
            "from": "+15005550006",
            "body": body,
            "status": "queued",
            "date_created": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True),
            "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
        }
        self.taken.append(record)
        return record

    async def outage(self) -> web.Response | None:
        phase = self.phase()
        if phase == 0:
            return web.json_response(ERROR_500, status=500)
        if phase == 1:
            return web.json_response(ERROR_429, status=429, headers={"Retry-After": "1"})
        return None

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        answer = await self.outage()
        if answer is not None:
            return answer
        if self.phase() == 2:  # hanging; every other one taken, answered too late
            self.hung += 1
            record = self.take(str(form["To"]), str(form["Body"])) if self.hung % 2 else None
            self.taken_while_hanging += record is not None
            await asyncio.sleep(PHASE_S)  # past the client's timeout
            return web.json_response(record or ERROR_500, status=201 if record else 500)
        return web.json_response(self.take(str(form["To"]), str(form["Body"])), status=201)

    async def list(self, request: web.Request) -> web.Response:
        answer = await self.outage()
        if answer is not None:
            return answer
        if self.phase() == 2:
            await asyncio.sleep(PHASE_S)
        to = request.query.get("To")
        found = [m for m in reversed(self.taken) if m["to"] == to]
        return twilio_message_page(found, request)


@pytest.fixture
def city(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'outage.db'}")
    store.create_schema()
    now = utcnow()
    sync_roster(store, load_roster(ROSTER), now)
    with store.transaction() as conn:
        conn.execute(
            insert(subscribers),
            [
                {
                    "phone": f"+86139{i:08d}",
                    "home_district": "yuanhui",
                    "language": "zh",
                    "channels": "sms",
                    "consent_source": "test",
                    "consent_at": now,
                }
                for i in range(SUBSCRIBERS)
            ],
        )
    return store


async def _relay(store: Store, index: PlaybookIndex, sender: Sender, seen: set[int]) -> int:
    """What the relay and the agents do, in order: every new event to its handler."""
    with store.read() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)
        ).all()
    handled = 0
    for row in rows:
        if row.id in seen:
            continue
        seen.add(row.id)
        handled += 1
        await _handle(store, index, sender, row.topic, dict(row.payload), utcnow())
    return handled


async def _handle(
    store: Store, index: PlaybookIndex, sender: Sender, topic: str, event: Any, now: datetime
) -> None:
    if topic == topics.REPORTS:
        handlers.handle_report_accepted(store, index, event, now)
    elif topic == topics.WEATHER:
        handlers.handle_weather_event(store, index, event, now)
    elif topic == topics.INCIDENTS:
        handlers.handle_incident_event(store, event, now)
    elif topic == topics.CREW_EVENTS:
        handlers.handle_crew_event(store, event, now)
    elif topic == topics.NOTIFICATIONS:
        await handlers.handle_notification(store, sender, event, now)
    elif topic in (topics.SENDS_URGENT, topics.SENDS_ROUTINE):
        await handlers.handle_send_chunk(store, sender, event, now)


def _ledger(store: Store) -> list[Any]:
    with store.read() as conn:
        return conn.execute(
            select(
                sends.c.dedup_key,
                sends.c.recipient,
                sends.c.body,
                sends.c.status,
                sends.c.provider_id,
            ).where(sends.c.channel == "sms")
        ).all()


def test_an_outage_of_500_then_429_then_hangs_loses_and_repeats_nothing(
    city: Store, index: PlaybookIndex
) -> None:
    twilio = OutageTwilio()
    scaled = {
        "crew": RetryPolicy(base_s=0.2, cap_s=1.0, escalate_after_s=3.0),
        "staff": RetryPolicy(base_s=0.2, cap_s=1.0),
        "citizen": RetryPolicy(base_s=0.3, cap_s=1.5),
        "warning": RetryPolicy(base_s=0.3, cap_s=1.5),
    }

    async def scenario(base: str) -> None:
        channel = TwilioSmsChannel(
            ACCOUNT, "secret", from_number="+15005550006", base_url=base, timeout_s=1.0
        )
        sender = Sender(city, {"sms": paced(channel, Pace(200.0, 20))}, scaled)
        stop = asyncio.Event()
        loop = asyncio.create_task(sender.run(stop, interval_s=0.1))
        await asyncio.sleep(0)  # the loop is up: handlers now only queue
        twilio.start()
        now = utcnow()
        # A red blizzard warning: snow crews for the district, and the playbook's
        # automatic warning to every subscriber in it; trees fall meanwhile.
        blizzard = WarningSignal(
            "R1", "blizzard", "red", "Alert", ("yuanhui",), now, now + timedelta(hours=6)
        )
        accept_warning(city, blizzard, "漯河市气象台发布暴雪红色预警", "test", now)
        for n, (lat, lon) in enumerate([(33.5712, 114.0153), (33.6010, 114.0590)]):
            accept_report(city, draft(lat, lon, phone=f"+861380000000{n}"), "open311", "test", now)
        seen: set[int] = set()
        while await _relay(city, index, sender, seen):
            pass
        # Through the outage: nothing is recorded as sent.
        while not twilio.recovered():
            assert [r for r in _ledger(city) if r.status != "pending"] == []
            await asyncio.sleep(0.2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await _relay(city, index, sender, seen)  # supervisors' digests, if due
            if all(r.status == "sent" for r in _ledger(city)):
                break
            await asyncio.sleep(0.2)
        stop.set()
        await loop
        await channel.http.close()

    app = web.Application()
    app.router.add_post(PATH, twilio.create)
    app.router.add_get(PATH, twilio.list)
    with serving(app) as base:
        asyncio.run(scenario(base))

    ledger = _ledger(city)
    crew = [r for r in ledger if r.dedup_key.startswith("assignment:")]
    warning = [r for r in ledger if r.dedup_key.startswith("w")]
    assert len(crew) >= 3 and len(warning) == SUBSCRIBERS
    assert {r.status for r in ledger} == {"sent"}
    taken = Counter((m["to"], m["body"]) for m in twilio.taken)
    # Every message taken exactly once, and nothing taken that the ledger does not hold.
    assert taken == Counter((r.recipient, r.body) for r in ledger)
    assert set(taken.values()) == {1}
    # Each row records the very message the provider holds (those taken while it hung
    # were found by asking it, not sent again).
    sids = {(m["to"], m["body"]): m["sid"] for m in twilio.taken}
    assert all(r.provider_id == sids[(r.recipient, r.body)] for r in ledger)
    assert twilio.taken_while_hanging  # the hanging phase was reached, and took some
