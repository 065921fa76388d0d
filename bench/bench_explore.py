"""Explorer recompute latency: new text in, the page's data out (what the server does per
keystroke-and-Enter), against the engine's bare dissection of the same text in the same run.

    python bench/bench_explore.py            # T = 64 / H = 64 (target ≤ 300 ms), T = 512 / H = 256
    python bench/bench_explore.py --quick    # T = 64 / H = 64 only

For each cell: ``baseline`` = :func:`dissect_text` with the cost flags off (no per-step
weight terms, no SVDs) — the engine's forward, backward and answers; ``explore`` =
:func:`model_data` (that dissection plus the frames' sent gradients, the per-reader parts,
the layout, the packing) and ``dumps`` (the JSON text the server sends); ``http`` = one POST
to a running local server, end to end. Times are wall-clock minima over repeats, the runs
alternating so both see the same load; the ratio explore/baseline is printed. The machine
is shared: read ratios, not absolute times, when others are busy (the load is printed).
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from collections.abc import Callable

from machine_header import print_header

from rnn_dissect.bptt.dissection import dissect_text
from rnn_dissect.reports.explore import dumps, fresh_model, model_data
from rnn_dissect.reports.explore_session import open_source

TEXT = (
    "the explorer recomputes this text with the same exact engine on every enter; "
    "forward, then backward through time, every number float64. "
) * 8


def best(fn: Callable[[], object], repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def http_once(cell: str, H: int, text: str, repeats: int) -> float:
    from rnn_dissect.web.server import start

    server, _ = start(open_source(None, text=text[:3], cell=cell, hidden=H))
    try:
        url = f"http://127.0.0.1:{server.port}/api/dissect?token={server.token}"
        body = json.dumps({"text": text}).encode()

        def post() -> None:
            with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=600) as r:
                r.read()

        return best(post, repeats)
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    print_header()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T = 64 / H = 64 only")
    args = ap.parse_args()
    sizes = [(64, 64, 5)] + ([] if args.quick else [(512, 256, 2)])
    print(
        f"{'cell':5} {'T':>4} {'H':>4}  {'baseline':>9} {'explore':>9} {'+dumps':>9} {'http':>9}  ratio   MB"
    )
    for T, H, repeats in sizes:
        text = TEXT[: T + 1]
        for cell in ("rnn", "lstm", "gru"):
            model = fresh_model(cell, text, H, 1)
            base = best(
                lambda m=model, s=text: dissect_text(m, s, step_grads=False, jacobians=False),
                repeats,
            )
            data = model_data(model, text)
            size = len(dumps(data)) / 1e6
            exp = best(lambda m=model, s=text: model_data(m, s), repeats)
            full = best(lambda m=model, s=text: dumps(model_data(m, s)), repeats)
            web = http_once(cell, H, text, repeats)
            print(
                f"{cell:5} {T:4d} {H:4d}  {1e3 * base:7.0f}ms {1e3 * exp:7.0f}ms {1e3 * full:7.0f}ms"
                f" {1e3 * web:7.0f}ms  {full / base:5.2f}× {size:5.1f}"
            )
    print("target: http ≤ 300 ms at T = 64, H = 64 (the page's whole recompute, server side)")


if __name__ == "__main__":
    main()
