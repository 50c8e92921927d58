"""Which channel carries which kind of message, from the settings: Twilio and the
WeChat Official Account when configured, the local outbox otherwise; the WeCom group
robots when their keys are set; calls to silent crews (`voice`) only when a Twilio
voice number is set (through Twilio with an account, else into the local outbox)."""

from __future__ import annotations

from alerts.channels.base import Channel
from alerts.channels.local_outbox import LocalOutboxChannel
from alerts.voice import STATUS_PATH as VOICE_STATUS_PATH
from pingan.settings import Settings
from pingan.store import Store


def build_channels(settings: Settings, store: Store, twilio_auth_token: str) -> dict[str, Channel]:
    local = LocalOutboxChannel(store)
    channels: dict[str, Channel] = {"sms": local, "wechat": local}
    if settings.twilio_account_sid:
        from alerts.channels.twilio_sms import TwilioSmsChannel

        channels["sms"] = TwilioSmsChannel(
            settings.twilio_account_sid,
            twilio_auth_token,
            settings.twilio_from,
            settings.twilio_messaging_service_sid,
            status_callback=f"{settings.effective_public_url}/webhooks/twilio/status",
            base_url=settings.twilio_api_base or None,
        )
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
            )
    if settings.wechat_appid:
        from alerts.channels.wechat import OfficialAccountChannel

        channels["wechat"] = OfficialAccountChannel(
            settings.wechat_appid,
            settings.wechat_secret,
            settings.wechat_template_id,
            page_base=settings.effective_public_url,
            keys=settings.wechat_template_fields,
            base_url=settings.wechat_api_base,
        )
    if settings.wecom_robot_keys:
        from alerts.channels.wechat import WeComRobotChannel

        channels["wecom"] = WeComRobotChannel(
            settings.wecom_robot_keys, base_url=settings.wecom_api_base
        )
    return channels
