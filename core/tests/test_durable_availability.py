"""Without a usable durable-rules, `--engine durable` is one clear line and the python backend keeps working.

These tests run whether or not durable-rules is installed (it cannot be on Python 3.13+).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import pytest

from leadscore import Engine, PluginManager
from leadscore.backends import durable, get_backend
from leadscore.errors import ConfigurationError

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def test_a_missing_durable_rules_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "durable_rules_engine", None)
    with pytest.raises(ConfigurationError) as info:
        get_backend("durable")
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith("--engine: durable-rules 2.0.28 ")
    assert line.endswith("how to install: pip install 'leadscore[durable]' on Python 3.11-3.12 with a C compiler")
    with pytest.raises(ConfigurationError):
        Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], backend="durable")
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF) as engine:
        assert engine.backend_name == "python"


def test_32_bit_c_longs_are_refused(monkeypatch):
    monkeypatch.setattr(durable.ctypes, "sizeof", lambda ctype: 4)
    with pytest.raises(ConfigurationError, match="needs 64-bit C longs"):
        durable.DurableBackend()


def test_the_command_line_says_it_in_one_line(monkeypatch, tmp_path):
    cli_main = pytest.importorskip("leadscore_cli.main")
    from click.testing import CliRunner

    monkeypatch.setitem(sys.modules, "durable_rules_engine", None)
    leads = tmp_path / "leads.jsonl"
    leads.write_text('{"id": "L-1", "email": "dana@acme.io"}\n', encoding="utf-8")
    cli = cli_main.build_cli(PluginManager(entry_points=False))
    result = CliRunner().invoke(cli, ["score", str(leads), "--engine", "durable", "--as-of", "2026-11-23T00:00:00Z"])
    assert result.exit_code != 0
    [line] = result.stderr.strip().splitlines()
    assert "--engine: durable-rules 2.0.28" in line and "pip install 'leadscore[durable]'" in line
    ok = CliRunner().invoke(cli, ["score", str(leads), "--engine", "python", "--as-of", "2026-11-23T00:00:00Z"])
    assert ok.exit_code == 0, ok.stderr
