"""`leadscore new plugin` / `leadscore new pack`: what they write checks, installs and passes its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore.plugins import PluginManager
from leadscore_cli.main import build_cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path):
    cli = build_cli(PluginManager(entry_points=False))
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_new_plugin_writes_a_distribution_named_after_the_plugin(tmp_path: Path):
    result = run("new", "plugin", "acme-crm", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    root = tmp_path / "leadscore-acme-crm"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "src/leadscore_acme_crm/__init__.py",
        "src/leadscore_acme_crm/rulepacks/acme-crm.toml", "src/leadscore_acme_crm/signals.py",
        "tests/cases/acme-crm.toml", "tests/test_acme_crm.py"]
    pyproject = (root / "pyproject.toml").read_text()
    assert 'name = "leadscore-acme-crm"' in pyproject
    assert '[project.entry-points.leadscore]\nacme-crm = "leadscore_acme_crm"' in pyproject
    assert "$" not in "".join(p.read_text() for p in root.rglob("*") if p.is_file())  # every placeholder filled


def test_the_plugin_rulepack_passes_check_with_the_plugin_registered(tmp_path: Path, monkeypatch):
    run("new", "plugin", "acme", cwd=tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "leadscore-acme" / "src"))
    import leadscore_acme

    pm = PluginManager(entry_points=False)
    pm.register(leadscore_acme)
    result = CliRunner().invoke(build_cli(pm), ["check", str(tmp_path / "leadscore-acme/src/leadscore_acme/rulepacks/acme.toml")])
    assert result.exit_code == 0, result.output
    assert "ok " in result.output and "acme 0.1.0, 1 rules" in result.output


def test_new_pack_writes_a_pack_and_cases_that_check_and_pass(tmp_path: Path):
    result = run("new", "pack", "acme", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert run("check", "acme.toml", cwd=tmp_path).exit_code == 0
    tested = run("test", "acme-cases.toml", cwd=tmp_path)
    assert tested.exit_code == 0, tested.output
    assert "2 passed, 0 failed" in tested.output


@pytest.mark.parametrize("name", ["Acme", "acme_crm", "1acme", "acme--crm", "acme-", ""])
def test_a_bad_name_is_one_line_and_exit_2(tmp_path: Path, name: str):
    result = run("new", "plugin", name, cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output == (f"leadscore: {name!r} is not a plugin name; use lower case letters, digits and single "
                             f"hyphens, starting with a letter, e.g. acme-crm\n")
    assert list(tmp_path.iterdir()) == []


def test_existing_files_are_never_overwritten(tmp_path: Path):
    (tmp_path / "acme.toml").write_text("# mine\n")
    result = run("new", "pack", "acme", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output == "leadscore: acme.toml: already exists; choose another --dir or name, nothing was written\n"
    assert (tmp_path / "acme.toml").read_text() == "# mine\n"
    assert not (tmp_path / "acme-cases.toml").exists()


def _venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.mark.slow
def test_the_plugin_installs_in_a_fresh_environment_and_its_tests_pass(tmp_path: Path):
    run("new", "plugin", "acme-crm", cwd=tmp_path)
    plugin = tmp_path / "leadscore-acme-crm"
    venv = tmp_path / "venv"
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        install = [uv, "pip", "install", "-q", "--python", str(_venv_python(venv))]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = [str(_venv_python(venv)), "-m", "pip", "install", "-q"]
    # The leadscore this checkout holds, as a user would have it from PyPI; the plugin editable.
    subprocess.run([*install, "-e", str(ROOT / "core"), "-e", f"{plugin}[test]"], check=True, timeout=600)
    python = str(_venv_python(venv))
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=plugin,
                           capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    listed = subprocess.run([python, "-c", "from leadscore import PluginManager; "
                                           "print([p.distribution for p in PluginManager().plugins()])"],
                            capture_output=True, text=True, check=True)
    assert "leadscore-acme-crm" in listed.stdout  # installing it is what makes leadscore load it


def test_a_scaffold_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from leadscore.plugins import PluginManager
    from leadscore_cli.main import build_cli

    written = []
    real = Path.write_text

    def write_then_fail(self, *args, **kwargs):
        if written:
            raise OSError(28, "No space left on device", str(self))
        written.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_then_fail)
    result = CliRunner().invoke(build_cli(PluginManager(entry_points=False)),
                                ["new", "pack", "acme", "--dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "cannot write: No space left on device; choose another --dir, nothing was written" in result.stderr
    assert list(tmp_path.iterdir()) == []
