"""Shared fixtures for the core tests: one fixed scoring time, a lead factory and fresh plugin managers.

Every test scores "as of" the same instant so decay factors and activity windows are exact and the
expected points in comments can be worked out by hand from firr-base.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from leadscore import Engine, PluginManager
from leadscore.model import Activity, Company, Lead

AS_OF = datetime(2026, 11, 23, 0, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def as_of() -> datetime:
    return AS_OF


@pytest.fixture(scope="session")
def ago() -> Callable[..., datetime]:
    """``ago(days=3, hours=2)``: an instant that long before AS_OF (negative values are in the future)."""

    def at(days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
        return AS_OF - timedelta(days=days, hours=hours, seconds=seconds)

    return at


def _activity(item: Activity | tuple) -> Activity:
    if isinstance(item, Activity):
        return item
    kind, days, *rest = item
    properties = rest[0] if rest else {}
    return Activity(kind, AS_OF - timedelta(days=days), properties)


@pytest.fixture(scope="session")
def make_lead() -> Callable[..., Lead]:
    """Build a Lead; ``activities`` may be Activity records or ``(type, days_before_as_of[, properties])``.

    ``company`` may be a Company or a dict of its fields. Activities are kept in the order given,
    so tests can feed the engine the same unsorted input an API caller might.
    """

    def build(
        id: str = "L-1",
        *,
        company: Company | dict[str, Any] | None = None,
        activities: Iterable[Activity | tuple] = (),
        **attributes: Any,
    ) -> Lead:
        if isinstance(company, dict):
            company = Company(**company)
        return Lead(id, company=company or Company(), activities=tuple(_activity(a) for a in activities),
                    **attributes)

    return build


@pytest.fixture
def pm() -> PluginManager:
    """A fresh manager with only the core's built-ins: installed plugins never leak into core tests."""
    return PluginManager(entry_points=False)


@pytest.fixture(scope="session")
def base_engine() -> Engine:
    """firr-base alone, built-ins only, scoring at AS_OF (shared: an Engine holds no per-lead state)."""
    engine = Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def firr_base_text() -> str:
    return (files("leadscore") / "rulepacks" / "firr-base.toml").read_text(encoding="utf-8")


@pytest.fixture
def write_pack(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write rulepack TOML to ``tmp_path/<name>`` and return the path."""

    def write(text: str, name: str = "pack.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
