"""One sender per deployment holds the `sender` lease, but a holder learns it lost the
lease only at its next renewal: for a few seconds two workers may both send. The compose
rehearsal (three workers) saw Twilio take a supervisor's digest twice at such a hand-over.
Whatever the lease says, two senders claiming at the same moment never get one row."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from alerts.channels.base import Message
from alerts.pipeline import Outgoing, claim, queue
from pingan.store import Store

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
SENDERS = 3
ROUNDS = 15
PER_ROUND = 40


def _claim_at_once(senders: list[Store]) -> list[list[int]]:
    """Each sender claims in its own transaction, all starting together."""
    start = threading.Barrier(len(senders))
    claimed: list[list[int]] = [[] for _ in senders]
    errors: list[BaseException] = []

    def take(k: int) -> None:
        try:
            start.wait(10)
            with senders[k].transaction() as conn:
                claimed[k] = [d.id for d in claim(conn, NOW, {("sms", True): 1000})]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(k,)) for k in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return claimed


def test_senders_claiming_at_once_never_share_a_row(store: Store) -> None:
    senders = [Store(store.url) for _ in range(SENDERS)]
    try:
        for n in range(ROUNDS):
            with store.transaction() as conn:
                queue(
                    conn,
                    [
                        Outgoing(Message(f"digest:{n}:{i}", f"+86100000{i:05d}", "督办"), "sms")
                        for i in range(PER_ROUND)
                    ],
                    NOW,
                )
            claimed = _claim_at_once(senders)
            every = [row for rows in claimed for row in rows]
            assert len(every) == len(set(every)) == PER_ROUND, f"round {n}: {claimed}"
    finally:
        for each in senders:
            each.dispose()
