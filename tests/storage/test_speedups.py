"""The storage speed-ups' seam (storage/speedups.py): the installed libraries are the tested ones, an
untested one is refused loudly, pyproject.toml pins the same ranges, and the switches really switch."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from storage import speedups, sqlite_driver
from storage.bot_state import DatabaseStorage
from storage.db import create_engine, create_session_factory
from storage.state_documents import to_document

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_libraries_are_inside_the_tested_ranges() -> None:
    # Fails on an upgrade past TESTED: run this directory and bench/storage_speedups.py, then widen it.
    speedups.check_versions()


@pytest.mark.parametrize("installed", [{"sqlalchemy": "2.1.0"}, {"aiosqlite": "0.23.0"}, {"jsonpickle": "4.0.0"},
                                       {"sqlalchemy": "2.0.29"}])
def test_an_untested_version_is_refused_by_name(installed: dict[str, str]) -> None:
    (name, found), = installed.items()
    with pytest.raises(speedups.IncompatibleVersion, match=f"{name} {found} is outside the tested range"):
        speedups.check_versions(installed)


def test_pyproject_pins_the_tested_ranges() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {Requirement(line).name.lower(): Requirement(line).specifier for line in dependencies}
    for name, (lowest, first_untested) in speedups.TESTED.items():
        assert str(pinned[name]) == f"<{first_untested},>={lowest}", name


def test_on_an_untested_installation_the_bot_runs_without_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speedups, "_checked", False)
    monkeypatch.setattr(speedups, "ACTIVE", speedups.Speedups())
    monkeypatch.setattr(speedups, "version", lambda name: "9.9" if name == "sqlalchemy" else "3.4.2")
    speedups.check_once()
    assert speedups.Speedups(one_trip_driver=False, direct_state_io=False, fast_state_documents=False) \
        == speedups.ACTIVE


async def test_the_switches_reach_the_storage(tmp_path: Path) -> None:
    with speedups.using(speedups.Speedups(one_trip_driver=False)):
        stock = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    assert stock.dialect.driver == "aiosqlite"
    await stock.dispose()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")
    assert engine.dialect.driver == sqlite_driver.DRIVER
    try:
        factory = create_session_factory(engine)
        assert DatabaseStorage(factory)._sqlite is not None
        with speedups.using(speedups.Speedups(direct_state_io=False)):
            assert DatabaseStorage(factory)._sqlite is None
    finally:
        await engine.dispose()


def test_without_the_fast_documents_jsonpickle_writes_the_same_document(monkeypatch: pytest.MonkeyPatch) -> None:
    from botbuilder.dialogs import DialogInstance, DialogState
    stack = DialogState([DialogInstance("book", {"step": "day", "values": {"mode": "video"}})])
    fast = to_document({"DialogState": stack})
    with speedups.using(speedups.Speedups(fast_state_documents=False)):
        assert to_document({"DialogState": stack}) == fast
