"""docker-compose.yml cannot run here (no Docker engine); check it by parsing: every
pingan service runs a real subcommand with real settings, pointed at the compose
Kafka and PostgreSQL."""

from __future__ import annotations

import argparse
import dataclasses

import yaml

from pingan.cli import build_parser
from pingan.settings import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SETTING_VARS = {f"PINGAN_{f.name.upper()}" for f in dataclasses.fields(Settings)}


def _subcommands() -> set[str]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def _pingan_services() -> dict[str, dict]:
    return {n: s for n, s in COMPOSE["services"].items() if s.get("build")}


def test_every_pingan_service_runs_a_real_subcommand() -> None:
    services = _pingan_services()
    assert set(services) == {"http", "worker"}
    for name, service in services.items():
        program, subcommand, *_ = service["command"]
        assert program == "pingan", name
        assert subcommand in _subcommands(), f"{name}: 'pingan {subcommand}' does not exist"
        build_parser().parse_args(service["command"][1:])  # parses without error


def test_pingan_services_use_compose_kafka_and_postgres_with_known_settings() -> None:
    for name, service in _pingan_services().items():
        env = service["environment"]
        assert env["PINGAN_KAFKA_URL"] == "kafka://kafka:9092", name
        assert env["PINGAN_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["PINGAN_DATABASE_URL"]
        unknown = set(env) - SETTING_VARS
        assert not unknown, f"{name}: not settings: {unknown}"
        for dependency in ("kafka", "postgres"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy"


def test_kafka_runs_in_kraft_mode() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ZOOKEEPER" not in " ".join(env)
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
