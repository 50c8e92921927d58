"""The floor for any Faust pipeline on this broker: a do-nothing agent reading a
topic that already holds N events. Run as `python -m bench.faust_floor BOOTSTRAP N`;
prints the events per second from its first event to its last."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid

import faust


def main(bootstrap: str, count: int) -> None:
    from kafka import KafkaProducer

    name = f"floor-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for n in range(count):
        producer.send(name, json.dumps({"n": n}).encode())
    producer.flush()
    producer.close()

    app = faust.App(
        name,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        broker_session_timeout=6,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=1,
        datadir=tempfile.mkdtemp(prefix="pingan-floor-"),
    )
    topic = app.topic(name, value_serializer="json", partitions=1)
    seen = {"n": 0, "first": 0.0}

    @app.agent(topic, concurrency=1)
    async def nothing(stream):  # type: ignore[no-untyped-def]
        async for _ in stream:
            if seen["n"] == 0:
                seen["first"] = time.perf_counter()
            seen["n"] += 1
            if seen["n"] == count:
                rate = (count - 1) / (time.perf_counter() - seen["first"])
                # fd 1 itself: a Faust worker turns print() into log lines
                os.write(1, (json.dumps({"events_per_s": rate}) + "\n").encode())
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "error"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
