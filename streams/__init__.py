"""Stream processing: the Faust app, its topics, and the thin agents around the core."""
