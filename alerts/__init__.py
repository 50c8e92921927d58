"""Outgoing messages: rendering, channels, and the send ledger around them."""
