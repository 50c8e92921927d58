"""Topic names, one per arrow of the architecture picture. Keys are chosen so that
everything about one incident lands on one partition."""

from __future__ import annotations

REPORTS = "pingan.intake.reports"  # a citizen report was accepted
WEATHER = "pingan.weather"  # an official warning, or a threshold crossed/cleared
INCIDENTS = "pingan.incidents"  # an incident opened (or changed and needs dispatch)
NOTIFICATIONS = "pingan.notifications"  # a message to a crew must go out
CREW_EVENTS = "pingan.crew-events"  # a crew acknowledged / finished an assignment
CALLS = "pingan.calls"  # a silent crew leader must be phoned
# Citizen warning sends, in chunks of subscribers. Red and orange (and corrections) have
# their own topic and agent, so they never wait behind a yellow backlog.
SENDS_URGENT = "pingan.sends.urgent"
SENDS_ROUTINE = "pingan.sends.routine"

# The worker's consumer group (the Faust app id); the relay reads its committed offsets.
CONSUMER_GROUP = "pingan"

ALL = (
    REPORTS,
    WEATHER,
    INCIDENTS,
    NOTIFICATIONS,
    CREW_EVENTS,
    CALLS,
    SENDS_URGENT,
    SENDS_ROUTINE,
)
