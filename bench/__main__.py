"""`make bench`: one JSON line per benchmark, {"bench", "value", "unit", ...}.

Ratios are measured side by side in one run, with the configurations interleaved,
because these machines are noisy and absolute times drift."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from bench.correlation import correlation_cost_ratio
from bench.fanout import fanout, fanout_paced, subscriber_import
from bench.matching import match_cost_ratio
from bench.scale import scale
from bench.storm import storm

BENCHES: dict[str, Callable[[], list[dict]]] = {
    "matching": match_cost_ratio,
    "correlation": correlation_cost_ratio,
    "storm": storm,
    "scale": scale,
    "fanout": fanout,
    "fanout_paced": fanout_paced,
    "subscriber_import": subscriber_import,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHES)
    for name in chosen:
        if name not in BENCHES:
            print(f"unknown bench {name!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        for line in BENCHES[name]():
            print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


raise SystemExit(main(sys.argv[1:]))
