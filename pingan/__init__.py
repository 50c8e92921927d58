"""Ping'an (平安): emergency response and warning for a city's urban-management bureau."""

__version__ = "0.1.0"
