"""Dispatch: choosing crews for incidents (staffing), the escalation timers that
follow an assignment, and the roster."""
