"""Phone calls through Twilio's Calls API with the real `twilio` SDK (async): a silent
crew leader hears the task and answers with a key (alerts/voice.py builds the TwiML).

Contract (Twilio's OpenAPI description, ../shared/corpus/twilio, CreateCall): To and
From required; `Twiml` inline instead of a `Url` to fetch (at most 4000 characters),
so a call needs no second webhook; `StatusCallback` (pingan/http/voice.py moves the
ledger) without `StatusCallbackEvent`, so Twilio reports only how the call ended
(completed, busy, no-answer, failed, canceled), which is what the ledger keeps (Prism
also cannot read that array from a form); `Timeout` seconds of ringing before
no-answer. Errors map as for SMS (twilio_sms.refused)."""

from __future__ import annotations

from typing import Any

import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from alerts.channels.base import Message, PermanentError, RetryableError
from alerts.channels.twilio_sms import HttpxTwilioClient, refused
from alerts.voice import TWIML_MAX_CHARS, answer_url, assignment_of_call, call_twiml

RING_S = 30  # a crew leader's phone rings this long before the call counts as no-answer


class TwilioVoiceChannel:
    """`recipient` is the crew leader's phone (E.164); the message's body is what is
    read out, its `answer_url` where the key pressed is posted."""

    name = "voice"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        status_callback: str = "",
        base_url: str | None = None,
        public_url: str = "",
    ) -> None:
        if not from_number:
            raise ValueError("a From number is required to place calls")
        self.http = HttpxTwilioClient(base_url)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.from_number, self.status_callback = from_number, status_callback
        self.public_url = public_url  # where Twilio posts the key pressed

    def payload(self, message: Message) -> dict[str, Any]:
        """The arguments of calls.create for this message (the SDK's names)."""
        answer = message.answer_url
        assignment_id = assignment_of_call(message.idempotency_key)
        if not answer and self.public_url and assignment_id is not None:
            answer = answer_url(self.public_url, assignment_id)
        if not answer:
            raise PermanentError("voice: a call needs the URL its answer is posted to")
        twiml = call_twiml(message.body, answer)
        if len(twiml) > TWIML_MAX_CHARS:
            raise PermanentError(f"voice: TwiML of {len(twiml)} characters (Twilio takes 4000)")
        extra: dict[str, Any] = {}
        if self.status_callback:
            extra = {"status_callback": self.status_callback, "status_callback_method": "POST"}
        return {
            "to": message.recipient,
            "from_": self.from_number,
            "twiml": twiml,
            "timeout": RING_S,
            **extra,
        }

    async def send(self, message: Message) -> str:
        try:
            created = await self.client.calls.create_async(**self.payload(message))
        except TwilioRestException as exc:
            raise refused(exc, message.recipient) from None
        except httpx.HTTPError as exc:
            raise RetryableError(f"twilio unreachable: {exc.__class__.__name__}") from None
        return str(created.sid)
