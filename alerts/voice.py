"""A crew leader's escalation call as TwiML, built with the twilio SDK's VoiceResponse,
which escapes every text and attribute (a report's words cannot become markup). Pure.

The call reads the task inside a one-key <Gather> that posts the key to `answer_url`
(pingan/http/voice.py); with no key it asks once more, then says goodbye. What a key
means is pingan.core.assignments.call_answer; what is read is alerts.render."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from alerts.render import CALL_NO_KEY, CALL_NOT_UNDERSTOOD, CALL_PROMPT

# Where Twilio posts a call's key and its status (pingan/http/voice.py serves them).
ANSWER_PATH = "/webhooks/twilio/voice/{assignment_id}/answer"
STATUS_PATH = "/webhooks/twilio/voice/status"
LANGUAGE = "zh-CN"
KEY_WAIT_S = 8  # seconds <Gather> waits for a key after the text is read
TWIML_MAX_CHARS = 4000  # Twilio's limit for the Calls API's Twiml parameter


# A call's status (Twilio's call_enum_status, and `initiated`, which status callbacks
# also report: https://www.twilio.com/docs/voice/api/call-resource#statuscallback) as
# the send ledger's line of progress (alerts/ledger.py): answered is delivered; busy and
# no-answer did not reach the person, so the row is never called again.
CALL_RECEIPTS: dict[str, str] = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "sending",
    "in-progress": "delivered",
    "completed": "delivered",
    "busy": "undelivered",
    "no-answer": "undelivered",
    "failed": "failed",
    "canceled": "canceled",
}


def answer_url(public_url: str, assignment_id: int) -> str:
    return public_url.rstrip("/") + ANSWER_PATH.format(assignment_id=int(assignment_id))


# A call's key in the send ledger; the pipeline rebuilds a message from its ledger row,
# so the answer URL is derived from the key again when the call is placed.
CALL_KEY_PREFIX = "call:assignment:"


def call_key(assignment_id: int) -> str:
    return f"{CALL_KEY_PREFIX}{int(assignment_id)}"


def assignment_of_call(key: str) -> int | None:
    rest = key.removeprefix(CALL_KEY_PREFIX)
    return int(rest) if rest != key and rest.isdigit() else None


def _ask(response: VoiceResponse, text: str, answer_url: str) -> None:
    gather = response.gather(num_digits=1, action=answer_url, method="POST", timeout=KEY_WAIT_S)
    gather.say(text, language=LANGUAGE)


def call_twiml(text: str, answer_url: str) -> str:
    """The whole call: the task and the question, the question again, goodbye."""
    response = VoiceResponse()
    _ask(response, text, answer_url)
    _ask(response, CALL_PROMPT, answer_url)
    response.say(CALL_NO_KEY, language=LANGUAGE)
    return str(response.to_xml())


def reprompt_twiml(answer_url: str) -> str:
    """A key that means nothing: say so, and ask again."""
    response = VoiceResponse()
    _ask(response, CALL_NOT_UNDERSTOOD + CALL_PROMPT, answer_url)
    response.say(CALL_NO_KEY, language=LANGUAGE)
    return str(response.to_xml())


def answered_twiml(text: str) -> str:
    """The answer was taken (or refused, saying why): say what happened and hang up."""
    response = VoiceResponse()
    response.say(text, language=LANGUAGE)
    response.hangup()
    return str(response.to_xml())
