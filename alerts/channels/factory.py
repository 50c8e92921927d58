"""Which channel carries which kind of message, from the settings: Twilio and the
WeChat Official Account when configured, the local outbox otherwise; the WeCom group
robots when their keys are set; calls to silent crews (`voice`) only when a Twilio
voice number is set (through Twilio with an account, else into the local outbox).
Each provider channel is one sender, paced at its configured or default pace
(alerts/pacing.py); the robots pace each key themselves."""

from __future__ import annotations

from alerts.channels.base import Channel
from alerts.channels.local_outbox import LocalOutboxChannel
from alerts.pacing import (
    TWILIO_LONG_CODE,
    TWILIO_MESSAGING_SERVICE,
    WECHAT_OFFICIAL_ACCOUNT,
    Pace,
    pace_of,
    paced,
)
from alerts.voice import STATUS_PATH as VOICE_STATUS_PATH
from pingan.settings import Settings
from pingan.store import Store


def sms_pace(settings: Settings) -> Pace:
    """The SMS sender's pace: configured, or its kind's default."""
    default = (
        TWILIO_MESSAGING_SERVICE if settings.twilio_messaging_service_sid else TWILIO_LONG_CODE
    )
    return pace_of(default, settings.sms_rate_per_s, settings.sms_burst)


def wechat_pace(settings: Settings) -> Pace:
    return pace_of(WECHAT_OFFICIAL_ACCOUNT, settings.wechat_rate_per_s, settings.wechat_burst)


def build_channels(settings: Settings, store: Store, twilio_auth_token: str) -> dict[str, Channel]:
    local = LocalOutboxChannel(store)
    channels: dict[str, Channel] = {
        # The local outbox is paced only when a pace is set (a drill of the real one).
        "sms": paced(local, sms_pace(settings)) if settings.sms_rate_per_s else local,
        "wechat": local,
    }
    if settings.twilio_account_sid:
        from alerts.channels.twilio_sms import TwilioSmsChannel

        twilio = TwilioSmsChannel(
            settings.twilio_account_sid,
            twilio_auth_token,
            settings.twilio_from,
            settings.twilio_messaging_service_sid,
            status_callback=f"{settings.effective_public_url}/webhooks/twilio/status",
            base_url=settings.twilio_api_base or None,
        )
        channels["sms"] = paced(twilio, sms_pace(settings))
    if settings.twilio_voice_from:  # crews silent past their deadline are phoned
        channels["voice"] = local
        if settings.twilio_account_sid:
            from alerts.channels.twilio_voice import TwilioVoiceChannel

            channels["voice"] = TwilioVoiceChannel(
                settings.twilio_account_sid,
                twilio_auth_token,
                settings.twilio_voice_from,
                status_callback=f"{settings.effective_public_url}{VOICE_STATUS_PATH}",
                base_url=settings.twilio_api_base or None,
                public_url=settings.effective_public_url,
            )
    if settings.wechat_appid:
        from alerts.channels.wechat import OfficialAccountChannel

        account = OfficialAccountChannel(
            settings.wechat_appid,
            settings.wechat_secret,
            settings.wechat_template_id,
            page_base=settings.effective_public_url,
            keys=settings.wechat_template_fields,
            base_url=settings.wechat_api_base,
        )
        channels["wechat"] = paced(account, wechat_pace(settings))
    if settings.wecom_robot_keys:
        from alerts.channels.wechat import WeComRobotChannel

        channels["wecom"] = WeComRobotChannel(
            settings.wecom_robot_keys, base_url=settings.wecom_api_base
        )
    return channels
