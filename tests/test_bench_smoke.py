"""Every benchmark of `make bench`, run whole with tiny sizes (`python -m bench --smoke`) in a fresh process,
as `make bench` runs them: a benchmark that no longer runs fails here, not at the end of a five-minute
`make bench` nobody runs in CI. Figures are not checked (speed is the benchmarks' business); what each
must still do right (every booking booked, no reminder lost) is."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import BENCHMARKS, SMOKE_SIZES
from bot.settings import PROJECT_ROOT


def test_every_benchmark_module_is_run_by_make_bench_and_has_smoke_sizes() -> None:
    modules = {path.stem for path in (PROJECT_ROOT / "bench").glob("*.py")
               if "\ndef run(" in path.read_text() or "\nasync def run(" in path.read_text()}
    assert modules == set(BENCHMARKS)
    assert set(SMOKE_SIZES) == set(BENCHMARKS)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[subprocess.Popen[str], Path]]]:
    """Every benchmark started at once, each in a fresh interpreter: a benchmark must not lean on what the
    test suite (or another benchmark) happens to have imported. They mostly wait on their servers."""
    folder = tmp_path_factory.mktemp("bench")
    runs = {}
    for name in BENCHMARKS:
        figures = folder / f"{name}.json"
        runs[name] = (subprocess.Popen([sys.executable, "-m", "bench", "--smoke", "--json", str(figures), name],
                                       cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, start_new_session=True), figures)
    yield runs
    for process, _ in runs.values():
        if process.poll() is None:
            # A run no test read (`-k`): its servers too, which would outlive it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.communicate()  # also closes its pipe


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_with_tiny_sizes(name: str,
                                        smoke_runs: dict[str, tuple[subprocess.Popen[str], Path]]) -> None:
    process, figures = smoke_runs[name]
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-5000:]
    results: dict[str, Any] = json.loads(figures.read_text())["benchmarks"][name]

    sizes = SMOKE_SIZES[name]
    if name == "booking":
        assert results["booked"] == sizes["RUNS"]["book"]
    elif name == "concurrent_citizens":
        for rows in results["phases"].values():
            for server, row in rows.items():
                assert row["errors"] == 0, (server, row.get("server_log_tail"))
                if server.startswith("guichet"):
                    assert row["booked_appointments"] == sizes["CITIZENS"]
    elif name == "reminder_dispatch":
        dispatch = results["dispatch_sqlite"]
        assert (dispatch["reminders"], dispatch["lost"], dispatch["duplicates"]) == (
            sizes["CONVERSATIONS"] * sizes["PER_CONVERSATION"], 0, 0)
        assert results["claims_sqlite"]["ran"] == sizes["CLAIM_JOBS"]
    elif name == "turn_latency":
        # Whole bookings ran over Teams and over the website (Submit only), each turn timed.
        rows = results["rows"]
        for row in ("guichet booking (sqlite)", "guichet booking web (sqlite)"):
            assert rows[row]["turns"] >= sizes["BOOKINGS_PER_ROUND"] * 5, (row, rows[row])
            assert "consent_accept" in rows[row]["steps_p50_ms"], rows[row]
        assert "menu_book" in rows["guichet booking web (sqlite)"]["steps_p50_ms"]
        assert "say" not in rows["guichet booking web (sqlite)"]["steps_p50_ms"]
    else:
        assert results["seconds"] >= 0
