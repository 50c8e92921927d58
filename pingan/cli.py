"""The `pingan` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pingan.settings import Settings, SettingsError, describe, load_settings


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
    feeds = sub.add_parser("feeds", help="inspect weather feed documents")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    parse = feeds_sub.add_parser("parse", help="print a feed document normalised, as JSON")
    parse.add_argument("source", help="a file path or an http(s) URL")
    subs = sub.add_parser("subscribers", help="citizens who receive warnings")
    subs_sub = subs.add_subparsers(dest="subscribers_command", required=True, metavar="ACTION")
    imp = subs_sub.add_parser("import", help="import a CSV (see alerts/subscribers.py)")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--errors",
        type=Path,
        default=None,
        help="where to write the per-row error report (default: FILE.errors.csv)",
    )
    users_cmd = sub.add_parser("users", help="console accounts")
    users_sub = users_cmd.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add_user = users_sub.add_parser("add", help="create an account (password from stdin)")
    add_user.add_argument("username")
    add_user.add_argument(
        "--role", required=True, choices=["viewer", "dispatcher", "supervisor", "admin"]
    )
    tokens_cmd = sub.add_parser("tokens", help="named API credentials")
    tokens_sub = tokens_cmd.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add_token = tokens_sub.add_parser("add", help="make a bearer token that names a person")
    add_token.add_argument("name")
    hotline = sub.add_parser("hotline", help="citizen hotline tools")
    hotline_sub = hotline.add_subparsers(dest="hotline_command", required=True, metavar="ACTION")
    classify = hotline_sub.add_parser("classify", help="print how a text would be categorised")
    classify.add_argument("text", help="the caller's words")
    replay = sub.add_parser("replay", help="feed a recorded sequence into the system")
    replay.add_argument("file", type=Path, help="replay YAML (see pingan/intake/feeds/replay.py)")
    replay.add_argument(
        "--speed", type=float, default=1.0, help="simulated minutes per real second (default 1)"
    )
    books = sub.add_parser("playbooks", help="validate or simulate playbooks (nothing running)")
    books_sub = books.add_subparsers(dest="playbooks_command", required=True, metavar="ACTION")
    validate = books_sub.add_parser("validate", help="check playbook files; exit 1 on problems")
    validate.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="files or folders (default: the configured playbooks folder)",
    )
    simulate = books_sub.add_parser(
        "simulate", help="print what a playbook would do for recorded events"
    )
    simulate.add_argument("playbook", help="a playbook id, or the path of a playbook file")
    simulate.add_argument("--events", required=True, type=Path, help="events YAML file")
    simulate.add_argument("--roster", type=Path, help="crew roster (default: configured)")
    return parser


def playbooks_command(args: argparse.Namespace, settings: Settings) -> int:
    from pingan.crews import RosterError, load_roster
    from pingan.simulation import EventsFileError, parse_events, simulate
    from playbooks.index import PlaybookIndex
    from playbooks.loader import PlaybookError, load_playbook_files

    if args.playbooks_command == "validate":
        paths = _playbook_paths(args.paths or [settings.playbooks_dir])
        try:
            found = load_playbook_files(paths)
        except PlaybookError as exc:
            for problem in exc.problems:
                print(problem)
            print(f"{len(exc.problems)} problem(s) in {len(paths)} file(s)", file=sys.stderr)
            return 1
        print(f"ok: {len(found)} playbook(s) valid: {', '.join(sorted(found))}")
        return 0
    target = Path(args.playbook)
    try:
        if target.suffix in (".yaml", ".yml") and target.exists():
            others = [
                p
                for p in _playbook_paths([settings.playbooks_dir])
                if p.resolve() != target.resolve()
            ]
            found = load_playbook_files([target])
            playbook_id = next(iter(found))
            found = {
                **{k: v for k, v in load_playbook_files(others).items() if k != playbook_id},
                **found,
            }
        else:
            found = load_playbook_files(_playbook_paths([settings.playbooks_dir]))
            playbook_id = args.playbook
            if playbook_id not in found:
                print(
                    f"pingan: no playbook {playbook_id!r} (known: {', '.join(sorted(found))})",
                    file=sys.stderr,
                )
                return 2
        roster = load_roster(args.roster or settings.roster_file)
        events = parse_events(args.events.read_text(encoding="utf-8"), str(args.events))
    except (PlaybookError, RosterError, EventsFileError, OSError) as exc:
        print(f"pingan: {exc}", file=sys.stderr)
        return 1
    for line in simulate(events, PlaybookIndex(found.values()), roster, only=playbook_id):
        print(line)
    return 0


@contextmanager
def open_store(settings: Settings) -> Iterator[Any]:
    """The configured database, schema ensured, closed afterwards (for commands)."""
    from pingan.store import Store

    store = Store(settings.effective_database_url)
    store.create_schema()
    try:
        yield store
    finally:
        store.dispose()


def add_user_command(username: str, role: str, settings: Settings) -> int:
    import getpass

    from pingan.clock import utcnow
    from pingan.users import UserError, create_user

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {username}: ")
        if getpass.getpass("again: ") != password:
            print("pingan users add: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    with open_store(settings) as store:
        try:
            create_user(store, username, password, role, "cli", utcnow())
        except UserError as exc:
            print(f"pingan users add: {exc}", file=sys.stderr)
            return 2
    print(f"user {username} ({role}) created")
    return 0


def import_command(path: Path, errors: Path | None, settings: Settings) -> int:
    from alerts.subscribers import import_file
    from pingan.clock import utcnow

    report = errors or path.with_suffix(".errors.csv")
    with open_store(settings) as store:
        try:
            result = import_file(store, path, report, utcnow())
        except (OSError, UnicodeDecodeError) as exc:
            print(f"pingan subscribers import: {exc}", file=sys.stderr)
            return 2
    print(
        f"{result.rows} rows: {result.imported} imported, {result.duplicates} already "
        f"subscribed, {len(result.errors)} with problems (see {report})"
    )
    return 1 if result.errors else 0


def classify_command(text: str) -> int:
    import json

    from pingan.intake.classify import classify
    from pingan.intake.location import locate

    decision = classify(text)
    place = locate(None, None, text)
    print(
        json.dumps(
            {
                "category": decision.category,
                "confidence": decision.confidence,
                "needs_review": decision.needs_review,
                "words": list(decision.words),
                "scores": {k: round(v, 2) for k, v in decision.scores.items() if v},
                "district": place.district,
                "segment": place.segment,
                "place": place.matched,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    return 0


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    from pingan.intake.feeds.replay import ReplayError, replay
    from playbooks.loader import PlaybookError
    from playbooks.registry import PlaybookRegistry

    if args.speed <= 0:
        print("pingan replay: --speed must be positive", file=sys.stderr)
        return 2
    try:
        registry = PlaybookRegistry(settings.playbooks_dir)
    except PlaybookError as exc:
        print(f"pingan replay: {exc}", file=sys.stderr)
        return 2
    with open_store(settings) as store:
        try:
            return asyncio.run(replay(args.file, store, registry.index, args.speed))
        except ReplayError as exc:
            print(f"pingan replay: {exc}", file=sys.stderr)
            return 2


def _playbook_paths(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return out


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
    from pingan.runtime.private import PRIVATE_UMASK

    os.umask(PRIVATE_UMASK)  # every file pingan writes (database, logs, secrets) is private

    from pingan.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    if args.command == "playbooks":
        return playbooks_command(args, settings)
    if args.command == "feeds":
        from pingan.intake.feeds.inspect import parse_command

        code, text = parse_command(args.source)
        print(text, file=sys.stdout if code == 0 else sys.stderr)
        return code
    if args.command == "replay":
        return replay_command(args, settings)
    if args.command == "hotline":
        return classify_command(args.text)
    if args.command == "users":
        return add_user_command(args.username, args.role, settings)
    if args.command == "tokens":
        from pingan.runtime.secrets import add_named_token

        try:
            token = add_named_token(settings.data_dir, args.name)
        except ValueError as exc:
            print(f"pingan tokens add: {exc}", file=sys.stderr)
            return 2
        print(f"token for {args.name} (restart pingan to use it): {token}")
        return 0
    if args.command == "subscribers":
        return import_command(args.file, args.errors, settings)
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
