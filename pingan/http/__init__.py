"""HTTP shells: one module per resource; the request context in app.py."""
