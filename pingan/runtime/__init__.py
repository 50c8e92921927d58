"""Processes and their lifecycle: the embedded broker, the worker, the relay, `pingan run`."""
