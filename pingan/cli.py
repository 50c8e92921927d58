"""The `pingan` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pingan.settings import SettingsError, describe, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pingan", description="Ping'an (平安) emergency response and warning system"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="run everything (embedded broker unless PINGAN_KAFKA_URL is set)")
    demo = sub.add_parser("demo", help="`run` plus a bundled scenario of invented reports")
    demo.add_argument(
        "--exit-after-scenario",
        action="store_true",
        help="stop once every scenario incident is resolved (for tests)",
    )
    demo.add_argument(
        "--speed", type=float, default=1.0, help="scenario speed factor (2 = twice as fast)"
    )
    sub.add_parser("worker", help="the stream-processing worker only (needs PINGAN_KAFKA_URL)")
    sub.add_parser("http", help="the HTTP API and the outbox relay only (needs PINGAN_KAFKA_URL)")
    sub.add_parser("config", help="list every setting with its default")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config":
        print(describe())
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"pingan: bad setting: {exc}", file=sys.stderr)
        return 2

    from pingan.logs import setup_logging

    setup_logging(settings.log_level)
    if args.command == "worker":
        from pingan.runtime.worker import run_worker

        return run_worker(settings)
    from pingan.runtime.supervisor import run

    if args.command == "http" and not settings.kafka_url:
        print("pingan http: PINGAN_KAFKA_URL is required", file=sys.stderr)
        return 2
    if args.command == "demo":
        from pingan.demo import demo_scenario

        return asyncio.run(
            run(settings, demo_scenario(args.speed), exit_after_scenario=args.exit_after_scenario)
        )
    return asyncio.run(run(settings, start_worker=args.command != "http"))
