"""Intake of citizen reports: Open311, SMS and operator-taken text; classify and place them."""
