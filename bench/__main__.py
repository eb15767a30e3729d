"""`python -m bench` (`make bench`): every benchmark, their tables, and one JSON file of all figures.

Runs, in order: slot search, the booking service (when bench/booking.py is present), reply sending,
turn latency, concurrent citizens. Each prints its own table; the figures and the machine they were
measured on go to bench/results/<UTC time>.json and bench/results/latest.json.
`python -m bench turn_latency slot_search` runs only those.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import machine

BENCHMARKS = ["slot_search", "booking", "reply_send", "turn_latency", "metrics_overhead", "concurrent_citizens",
              "reminder_dispatch"]
RESULTS = Path(__file__).resolve().parent / "results"


def _run_one(name: str) -> dict[str, Any] | None:
    if importlib.util.find_spec(f"bench.{name}") is None:
        print(f"({name}: not present, skipped)")
        return None
    module = importlib.import_module(f"bench.{name}")
    started = time.perf_counter()
    results = asyncio.run(module.run()) if asyncio.iscoroutinefunction(module.run) else module.run()
    printer = getattr(module, "print_results", None) or getattr(module, "_print", None)
    if printer is not None:
        printer(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                              "benchmarks": {}}
    info = report["machine"]
    print(f"{info['nproc']} CPUs ({info['cpu']}), Python {info['python']}\n")
    for name in names or BENCHMARKS:
        print(f"== {name} ==")
        results = _run_one(name)
        if results is not None:
            report["benchmarks"][name] = results
        print()
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2, default=str)
    stamp = report["when"].replace(":", "").replace("-", "").replace("+0000", "Z")
    written = RESULTS / f"{stamp}.json"
    written.write_text(text)
    if not names:  # latest.json is a whole run's
        written = RESULTS / "latest.json"
        written.write_text(text)
    print(f"figures written to {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
