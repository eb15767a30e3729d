"""`python -m bench` (`make bench`): every benchmark, their tables, and one JSON file of all figures.

Runs, in order: slot search, the booking service (when bench/booking.py is present), reply sending,
turn latency, concurrent citizens. Each prints its own table; the figures and the machine they were
measured on go to bench/results/<UTC time>.json and bench/results/latest.json.
`python -m bench turn_latency slot_search` runs only those.
`python -m bench --smoke [--json PATH] [names]` runs them with tiny sizes (SMOKE_SIZES), in a fresh process
as `make bench` does: the test suite's check that every benchmark still runs (tests/test_bench_smoke.py).
Its figures mean nothing and are written only to PATH.
"""

from __future__ import annotations

import argparse
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

BENCHMARKS = ["slot_search", "booking", "reply_send", "turn_latency", "storage_speedups", "metrics_overhead",
              "concurrent_citizens", "reminder_dispatch"]
RESULTS = Path(__file__).resolve().parent / "results"
# Per benchmark, the module attributes that set its sizes, and tiny values for them (`--smoke`).
SMOKE_SIZES: dict[str, dict[str, Any]] = {
    "slot_search": {"COUNSELORS": 4, "WEEKS": 1,
                    "RUNS": {"times_for_day": 2, "times_for_day_cold": 2, "slots_at": 2, "days_with_slots": 2,
                             "index_build": 2}},
    "booking": {"RUNS": {"slots": 2, "days": 2, "book": 2}},
    "reply_send": {"REPLIES": 4, "WARMUP": 1},
    "turn_latency": {"ROUNDS": 1, "TEXT_TURNS_PER_ROUND": 2, "BOOKINGS_PER_ROUND": 1, "WARMUP_TEXT_TURNS": 1,
                     "WARMUP_BOOKINGS": 1},
    "storage_speedups": {"ROUNDS": 1, "BOOKINGS_PER_ROUND": 1, "TEXT_TURNS_PER_ROUND": 2},
    "metrics_overhead": {"ROUNDS": 2, "BOOKINGS_PER_ROUND": 1, "WARMUP_BOOKINGS": 1, "RECORDING_CALLS": 100},
    # Seven servers, each started in its own process: SQLite only keeps it short.
    "concurrent_citizens": {"CITIZENS": 3, "TEXT_TURNS": 2, "THINK_SECONDS": (0.0, 0.05), "BACKENDS": ("sqlite",)},
    "reminder_dispatch": {"CONVERSATIONS": 2, "PER_CONVERSATION": 2, "TRANSIENT_503_RATE": 0.0, "CLAIM_JOBS": 20},
}
# Modules whose sizes another benchmark reads (bench/booking.py builds slot_search's calendar).
_SMOKE_SHARED = {"booking": ("slot_search",), "storage_speedups": ("turn_latency",)}


def _shrink(name: str) -> None:
    for owner in (name, *_SMOKE_SHARED.get(name, ())):
        module = importlib.import_module(f"bench.{owner}")
        for attribute, value in SMOKE_SIZES[owner].items():
            if not hasattr(module, attribute):
                raise AttributeError(f"bench.{owner} has no size {attribute!r} (SMOKE_SIZES is out of date)")
            setattr(module, attribute, value)


def _run_one(name: str, *, smoke: bool = False) -> dict[str, Any] | None:
    if importlib.util.find_spec(f"bench.{name}") is None:
        print(f"({name}: not present, skipped)")
        return None
    module = importlib.import_module(f"bench.{name}")
    if smoke:
        _shrink(name)
    started = time.perf_counter()
    results = asyncio.run(module.run()) if asyncio.iscoroutinefunction(module.run) else module.run()
    printer = getattr(module, "print_results", None) or getattr(module, "_print", None)
    if printer is not None:
        printer(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="run the benchmarks")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (all when none): {', '.join(BENCHMARKS)}")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that they run, not how fast")
    parser.add_argument("--json", type=Path, help="write the figures here (with --smoke: only here)")
    arguments = parser.parse_args(argv)
    names: list[str] = arguments.names
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
        results = _run_one(name, smoke=arguments.smoke)
        if results is not None:
            report["benchmarks"][name] = results
        print()
    text = json.dumps(report, indent=2, default=str)
    if arguments.json is not None:
        arguments.json.write_text(text)
        print(f"figures written to {arguments.json}")
    if arguments.smoke:
        return 0
    RESULTS.mkdir(exist_ok=True)
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
