"""Intake: everything that comes in. Citizen reports (Open311, SMS, operators) with
their classification and placing, official warnings, and the weather feeds with the
threshold evaluator. Each entrance persists, then publishes through the outbox."""
