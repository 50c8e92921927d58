"""Channels: one small interface, one module per way of reaching a phone."""

from alerts.channels.base import (
    Channel,
    Message,
    PermanentError,
    RetryableError,
    SendError,
    WarningCard,
)

__all__ = ["Channel", "Message", "PermanentError", "RetryableError", "SendError", "WarningCard"]
