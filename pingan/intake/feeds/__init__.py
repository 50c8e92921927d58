"""Weather feeds: fetch, parse, normalise."""
