"""`pingan demo`: the system plus a scenario of invented reports, and crews that answer
after a while, so a newcomer sees incidents open and close within a minute.

The scenario talks to the running system only over its public HTTP API, as a citizen
app and crew phones would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from pingan.runtime.supervisor import Running
from pingan.settings import PACKAGE_ROOT

SCENARIO_FILE = PACKAGE_ROOT / "data" / "demo-scenario.yaml"
TIMEOUT_S = 180


def _say(start: float, speed: float, text: str) -> None:
    minutes = (time.monotonic() - start) * speed
    print(f"  [demo +{minutes:5.1f} min] {text}", flush=True)


def demo_scenario(
    speed: float = 1.0, path: Path = SCENARIO_FILE
) -> Callable[[Running], Awaitable[None]]:
    scenario = yaml.safe_load(path.read_text(encoding="utf-8"))
    if speed <= 0:
        raise ValueError("speed must be positive")

    async def play(running: Running) -> None:
        start = time.monotonic()
        headers = {"Authorization": f"Bearer {running.api_token}"}
        async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as client:
            await _play(client, headers, running.open311_key, scenario, speed, start)

    return play


async def _play(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    key: str,
    scenario: dict[str, Any],
    speed: float,
    start: float,
) -> None:
    def sim_now() -> float:
        return (time.monotonic() - start) * speed

    pending = sorted(scenario["steps"], key=lambda r: r["at_min"])
    ack_after = float(scenario["crews"]["acknowledge_after_min"])
    done_after = float(scenario["crews"]["done_after_min"])
    report_ids: list[str] = []
    seen_assignment: dict[int, float] = {}  # assignment id -> sim minute first seen
    acked_at: dict[int, float] = {}
    announced: set[tuple[int, str, str]] = set()
    deadline = time.monotonic() + TIMEOUT_S
    print(
        f"  demo: {len(pending)} invented reports and warnings over "
        f"{pending[-1]['at_min']} simulated minutes",
        flush=True,
    )
    while time.monotonic() < deadline:
        while pending and pending[0]["at_min"] <= sim_now():
            step = pending.pop(0)
            if "report" in step:
                form = {k: str(v) for k, v in step["report"].items()}
                form["api_key"] = key
                reply = await client.post("/open311/v2/requests.json", data=form)
                reply.raise_for_status()
                report_ids.append(reply.json()[0]["service_request_id"])
                _say(
                    start,
                    speed,
                    f"citizen report #{report_ids[-1]} "
                    f"({form['service_code']}): {form['description'][:28]}",
                )
            else:
                reply = await client.post("/api/warnings", json=step["warning"], headers=headers)
                reply.raise_for_status()
                w = step["warning"]
                _say(start, speed, f"warning {w['id']} {w['msg_type']}: {w['headline']}")
        listing = (await client.get("/api/incidents", headers=headers)).json()["incidents"]
        for summary in listing:
            key_ = (summary["id"], summary["status"], summary["level"])
            if key_ not in announced:
                announced.add(key_)
                where = summary["district"] or "site"
                _say(
                    start,
                    speed,
                    f"incident {summary['id']} ({summary['playbook']['id']}, "
                    f"{summary['level']}, {where}) is {summary['status']}",
                )
            if summary["status"] == "resolved":
                continue
            detail = (await client.get(f"/api/incidents/{summary['id']}", headers=headers)).json()
            for a in detail["assignments"]:
                seen_assignment.setdefault(a["id"], sim_now())
                if a["state"] == "assigned" and sim_now() - seen_assignment[a["id"]] >= ack_after:
                    await client.post(f"/api/assignments/{a['id']}/ack", headers=headers)
                    acked_at[a["id"]] = sim_now()
                    _say(start, speed, f"crew {a['crew']['id']} acknowledged assignment {a['id']}")
                elif (
                    a["state"] == "acknowledged"
                    and a["id"] in acked_at
                    and sim_now() - acked_at[a["id"]] >= done_after
                ):
                    await client.post(f"/api/assignments/{a['id']}/done", headers=headers)
                    _say(start, speed, f"crew {a['crew']['id']} finished assignment {a['id']}")
        finished = not pending and listing and all(s["status"] == "resolved" for s in listing)
        if finished and await _all_reports_closed(client, report_ids):
            print(
                f"  demo: scenario complete: {len(report_ids)} reports, "
                f"{len(listing)} incidents "
                f"({', '.join(sorted({i['playbook']['id'] for i in listing}))}), all resolved",
                flush=True,
            )
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"demo scenario did not finish within {TIMEOUT_S}s")


async def _all_reports_closed(client: httpx.AsyncClient, report_ids: list[str]) -> bool:
    for rid in report_ids:
        reply = await client.get(f"/open311/v2/requests/{rid}.json")
        if reply.json()[0]["status"] != "closed":
            return False
    return True
