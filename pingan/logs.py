"""Structured logs: one line per event, `key=value` pairs, UTC timestamps.
Citizens' phone numbers are masked where they are logged (pingan.privacy)."""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any

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


def logging_config(level: str) -> dict[str, Any]:
    """The one logging set-up, as a dictConfig: used by every pingan process, and handed
    to Faust's worker so that its lines (and the agents' lines) are logfmt too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"logfmt": {"()": LogfmtFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "logfmt",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"level": "WARNING"} for name in NOISY_LOGGERS},
    }


def setup_logging(level: str) -> None:
    logging.config.dictConfig(logging_config(level))
