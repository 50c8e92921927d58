"""Structured logs: one line per event, `key=value` pairs, UTC timestamps.
Citizens' phone numbers are masked where they are logged (pingan.privacy)."""

from __future__ import annotations

import logging
import logging.config
import re
import time
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from pingan.privacy import redact_links

# Libraries that log every poll or request at INFO; their warnings still show.
NOISY_LOGGERS = ("kafka", "aiokafka", "aiohttp.access", "httpx")


class LogfmtFormatter(logging.Formatter):
    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        ts = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        level = record.levelname.lower()
        # Escaped so that a message body with newlines or quotes stays one parseable line.
        # Crew links are credentials: a log keeps that a link was sent, never the link.
        msg = redact_links(record.getMessage())
        msg = msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        line = f'ts={ts} level={level} logger={record.name} msg="{msg}"'
        if record.exc_info:
            line += "\n" + redact_links(self.formatException(record.exc_info))
        return line


# `key=value` in a message ("crew assigned incident=3 crew=snow-1"): a field of its own
# in JSON. Values run to the next space; a quoted value to its closing quote.
_FIELD = re.compile(r"""(?<![\w.])([a-z_][a-z0-9_]*)=("[^"]*"|'[^']*'|[^\s,;]+)""")
# Fields every line has; a message's own key=value never overwrites them.
_RESERVED = {"ts", "level", "logger", "msg", "exc_info"}


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line for a log collector: ts, level, logger, msg, and each
    key=value of the message as a field. Links redacted as in logfmt."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(json_ensure_ascii=False)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        msg = redact_links(record.getMessage())
        ts = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        log_data.update(ts=ts, level=record.levelname.lower(), logger=record.name, msg=msg)
        for key, value in _FIELD.findall(msg):
            if key not in _RESERVED and key not in log_data:
                log_data[key] = value.strip("\"'")
        if record.exc_info:
            log_data["exc_info"] = redact_links(self.formatException(record.exc_info))


FORMATTERS = {"logfmt": LogfmtFormatter, "json": JsonLineFormatter}


def logging_config(level: str, log_format: str = "logfmt") -> dict[str, Any]:
    """The one logging set-up, as a dictConfig: used by every pingan process, and handed
    to Faust's worker so that its lines (and the agents' lines) are formatted alike."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": FORMATTERS[log_format]}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"level": "WARNING"} for name in NOISY_LOGGERS},
    }


def setup_logging(level: str, log_format: str = "logfmt") -> None:
    logging.config.dictConfig(logging_config(level, log_format))
