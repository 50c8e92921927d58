"""Durability: stop (or kill) `pingan run` with reports in flight and start it again on
the same data folder. The embedded broker lost its topics; the database did not."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from pingan.store.schema import assignments, local_messages, reports, sends
from tests.e2e.harness import Stack, wait_for

pytestmark = pytest.mark.e2e
REPORTS = 15


def _roster(path: Path) -> Path:
    """Invented: enough tree crews that every incident gets one."""
    rows = "\n".join(
        f"  - {{id: t{i}, name: Tree crew {i}, phone: '+86100000{i:05d}', skills: [tree], "
        f"equipment: [chainsaw], home: [{33.55 + i * 0.002:.4f}, 114.02], capacity: 2}}"
        for i in range(REPORTS)
    )
    path.write_text(f"crews:\n{rows}\n")
    return path


def _snapshot(stack: Stack) -> tuple[list, list, list, list]:
    with stack.store.read() as conn:
        return (
            conn.execute(select(reports.c.id, reports.c.incident_id)).all(),
            conn.execute(select(assignments.c.id, assignments.c.incident_id)).all(),
            conn.execute(
                select(local_messages.c.idempotency_key, local_messages.c.recipient)
            ).all(),
            conn.execute(select(sends.c.dedup_key, sends.c.status)).all(),
        )


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_mid_flight_loses_nothing_and_notifies_once(tmp_path: Path, how: int) -> None:
    env = {"PINGAN_ROSTER_FILE": str(_roster(tmp_path / "roster.yaml"))}
    first = Stack(tmp_path / "data", env)
    accepted = []
    for i in range(REPORTS):
        # 15 separate trees, ~220 m apart: 15 incidents.
        reply = first.report(
            lat=f"{33.55 + i * 0.002:.4f}", long="114.02", description=f"第{i}棵树倒了"
        )
        assert reply.status_code == 200
        accepted.append(int(reply.json()[0]["service_request_id"]))
        if i == REPORTS // 2:
            # Let the first half get under way so the stop catches every stage.
            wait_for(lambda: _snapshot(first)[1], what="a first assignment")
    first.stop(how)

    before_reports, before_assignments, _, _ = _snapshot(first)
    assert sorted(r.id for r in before_reports) == accepted
    in_flight = sum(1 for r in before_reports if r.incident_id is None) + (
        REPORTS - len(before_assignments)
    )
    print(f"in flight at stop: {in_flight} steps not yet done")

    second = Stack(tmp_path / "data", env)
    try:

        def all_dispatched() -> bool:
            got_reports, got_assignments, messages, _ = _snapshot(second)
            return (
                all(r.incident_id is not None for r in got_reports)
                and len(got_assignments) == REPORTS
                and len(messages) == REPORTS
            )

        wait_for(all_dispatched, timeout=60, what="every report dispatched and notified")
        got_reports, got_assignments, messages, ledger = _snapshot(second)
        assert sorted(r.id for r in got_reports) == accepted
        assert len({r.incident_id for r in got_reports}) == REPORTS
        # One assignment per incident, one message per assignment, ledger all sent.
        assert Counter(a.incident_id for a in got_assignments).most_common(1)[0][1] == 1
        assert sorted(m.idempotency_key for m in messages) == sorted(
            f"assignment:{a.id}" for a in got_assignments
        )
        assert len(ledger) == REPORTS and {s.status for s in ledger} == {"sent"}

        # What was in flight completes: crews can finish every incident.
        for a in got_assignments:
            assert (
                second.http.post(f"/api/assignments/{a.id}/ack", headers=second.auth).status_code
                == 200
            )
            assert (
                second.http.post(f"/api/assignments/{a.id}/done", headers=second.auth).status_code
                == 200
            )
        wait_for(
            lambda: all(i["status"] == "resolved" for i in second.incidents()),
            timeout=30,
            what="all incidents resolved",
        )
    finally:
        assert second.stop() == 0


def test_a_broker_crash_does_not_stop_intake(tmp_path: Path) -> None:
    import os

    from tests.e2e.harness import processes_matching

    env = {"PINGAN_ROSTER_FILE": str(_roster(tmp_path / "roster.yaml"))}
    stack = Stack(tmp_path / "data", env)
    try:
        [broker_pid] = processes_matching(f"tcp://{stack.broker_bootstrap}")
        os.kill(broker_pid, signal.SIGKILL)
        # Intake keeps answering while the broker is down and being restarted.
        for i in range(3):
            reply = stack.report(
                lat=f"{33.55 + i * 0.002:.4f}", long="114.02", description=f"第{i}棵树倒了"
            )
            assert reply.status_code == 200
        wait_for(
            lambda: processes_matching(f"tcp://{stack.broker_bootstrap}"), what="broker restarted"
        )
        wait_for(
            lambda: len(_snapshot(stack)[1]) == 3,
            timeout=90,
            what="reports dispatched after the restart",
        )
    finally:
        assert stack.stop() == 0
