"""Faust passes aiokafka a fixed fetch_max_wait_ms of 1500 ms and has no setting for
it. A broker that holds a fetch for its full wait even when events arrive (Tansu does)
then adds up to that much to every hop through an idle topic. This sets the wait the
worker's consumer is created with; it changes nothing else in Faust."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as driver

_original = driver.AIOKafkaConsumerThread._create_worker_consumer


def set_fetch_wait(ms: int) -> None:
    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = _original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by aiokafka when the consumer starts
        return consumer

    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
