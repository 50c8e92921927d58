"""The domain core: pure decisions of (event, state, now). It imports nothing that
does I/O (no store, HTTP, broker or channels); tests/unit/test_import_contracts.py
holds it to that. Shells load the state a decision needs, call one function here
and write what it returns."""
