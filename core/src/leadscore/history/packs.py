"""Engines for the pack sets that diff and replay compare: given on the command line, or stored with a run.

A pack file given here replaces the installed pack of the same name (so two revisions of
``firr-base`` can be compared), and a directory stands for the ``.toml`` files in it.
"""

from __future__ import annotations

import tempfile
import tomllib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from leadscore.engine import Engine
from leadscore.errors import ConfigurationError
from leadscore.history.store import RunInfo
from leadscore.model import RulepackSource
from leadscore.plugins import PluginManager


class _PackOverrides:
    """A plugin manager that serves the same plugins with some rulepack sources replaced or hidden."""

    def __init__(self, pm: PluginManager, hidden: set[str], extra: dict[str, Path]) -> None:
        self._pm = pm
        self._hidden = hidden
        self._extra = extra

    def get_rulepack_sources(self) -> dict[str, tuple[RulepackSource, str]]:
        sources = {name: item for name, item in self._pm.get_rulepack_sources().items()
                   if name not in self._hidden and name not in self._extra}
        for name, path in self._extra.items():
            sources[name] = (RulepackSource(name, path), "history")
        return dict(sorted(sources.items()))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pm, name)


def expand_specs(specs: Sequence[str], option: str) -> list[str]:
    """Pack names and files as given; a directory becomes its ``*.toml`` files in name order."""
    out: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files = sorted(str(p) for p in path.glob("*.toml"))
            if not files:
                raise ConfigurationError(option, f"{spec} holds no .toml rulepack",
                                         "give a directory of rulepack files, a .toml file or an installed pack name")
            out.extend(files)
        else:
            out.append(spec)
    return out


def _file_pack_name(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            name = tomllib.load(handle).get("pack", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError, AttributeError, RecursionError, ValueError):
        return None  # the engine reports the file's problem in its own words
    return name if isinstance(name, str) else None


def engine_for_packs(pm: PluginManager, specs: Sequence[str], option: str, *, backend: str = "python",
                     as_of: datetime | None = None) -> Engine:
    """An Engine scoring with ``specs`` (names, files, directories); files shadow same-named installed packs."""
    chosen = expand_specs(specs, option)
    shadowed = {name for spec in chosen if spec.endswith(".toml") or "/" in spec
                if (name := _file_pack_name(spec)) is not None}
    plugins: Any = _PackOverrides(pm, shadowed, {}) if shadowed else pm
    return Engine(plugins=plugins, rulepacks=chosen or None, backend=backend, as_of=as_of)


class StoredPackEngine:
    """An Engine rebuilt from the pack texts stored with a run (a context manager; cleans up its files)."""

    def __init__(self, pm: PluginManager, run: RunInfo, *, backend: str = "python") -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="leadscore-packs-")
        extra: dict[str, Path] = {}
        for pack in run.packs:
            path = Path(self._folder.name) / f"{pack.hash}.toml"
            path.write_text(pack.text, encoding="utf-8")
            extra[pack.name] = path
        try:
            self.engine = Engine(plugins=_PackOverrides(pm, set(), extra),  # type: ignore[arg-type]
                                 rulepacks=[p.name for p in run.packs if p.active], backend=backend)
        except BaseException:
            self._folder.cleanup()
            raise

    def __enter__(self) -> Engine:
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.engine.close()
        self._folder.cleanup()
