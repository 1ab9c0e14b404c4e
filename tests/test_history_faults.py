"""History under faults, through the installed command: a killed run, a full disk, a read-only file,
two writers at once. The history keeps every committed run whole and never a part of one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = str(ROOT / "rulepacks" / "samples" / "leads.jsonl")
LEADSCORE = str(Path(sys.executable).parent / "leadscore")


@pytest.fixture(scope="module")
def many_leads(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("leads") / "leads.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--leads", "3000", "--seed", "11",
                    "-o", str(path)], check=True)
    return str(path)


def score(leads: str, target: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([LEADSCORE, "score", leads, "--as-of", "2026-11-23", "--history", target, "--format",
                           "jsonl", *extra], capture_output=True, text=True, env=env, timeout=300)


def stored(target: str) -> list[tuple[int, int, bool, int]]:
    from leadscore.history import open_store

    with open_store(target) as store:
        return [(r.run_id, r.scored, r.complete, len(list(store.run_cards(r.run_id)))) for r in store.runs()]


@pytest.mark.slow
def test_a_run_killed_midway_leaves_the_previous_runs_and_nothing_of_itself(history_target: str,
                                                                           many_leads: str) -> None:
    assert score(SAMPLES, history_target).returncode == 0
    proc = subprocess.Popen([LEADSCORE, "score", many_leads, "--as-of", "2026-11-23", "--history", history_target,
                             "--format", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    for _ in range(2500):  # well into the run: several batches were written in its transaction
        assert proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.5)  # PostgreSQL notices the dead connection and rolls its transaction back
    assert stored(history_target) == [(1, 46, True, 46)]
    result = score(SAMPLES, history_target)  # the history takes new runs afterwards
    assert result.returncode == 0, result.stderr
    assert [r[0] for r in stored(history_target)] == [1, 2]


@pytest.fixture()
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    yield folder
    subprocess.run(["umount", "-l", str(folder)])


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_what_was_stored(small_disk: Path, many_leads: str) -> None:
    target = str(small_disk / "history.duckdb")
    assert score(SAMPLES, target).returncode == 0
    result = score(many_leads, target)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (f"leadscore: {target}: the disk is full, could not commit; "
                                              "free some space and run again; nothing of this run was stored")
    assert "Traceback" not in result.stderr
    assert stored(target) == [(1, 46, True, 46)]


def test_a_read_only_database_file_is_one_line(small_disk: Path) -> None:
    target = str(small_disk / "history.duckdb")
    assert score(SAMPLES, target).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = score(SAMPLES, target)
    assert result.returncode == 2
    assert result.stderr == (f"leadscore: {target}: cannot open: the database file is read-only; give a writable "
                             "path with --history, or make the file writable\n")


@pytest.mark.slow
def test_two_writers_one_waits_and_both_runs_are_whole(history_target: str, many_leads: str) -> None:
    first = subprocess.Popen([LEADSCORE, "score", many_leads, "--as-of", "2026-11-23", "--history", history_target,
                              "--format", "jsonl"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    second = score(SAMPLES, history_target)
    first.wait(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    runs = stored(history_target)
    assert sorted((scored, complete, cards) for _, scored, complete, cards in runs) == [(46, True, 46),
                                                                                          (3000, True, 3000)]


@pytest.mark.slow
def test_a_writer_that_cannot_wait_fails_cleanly(history_target: str, many_leads: str) -> None:
    first = subprocess.Popen([LEADSCORE, "score", many_leads, "--as-of", "2026-11-23", "--history", history_target,
                              "--format", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert first.stdout is not None
    # Well into its run, so it holds the history (a fixed sleep lost the race on a busy machine, where
    # starting up took longer); it waits on the full pipe, holding it, while the second tries.
    for _ in range(500):
        assert first.stdout.readline()
    second = score(SAMPLES, history_target, env={**os.environ, "LEADSCORE_HISTORY_WAIT": "0.2"})
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert second.returncode == 2
    line = second.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert ("in use by another process" in line or "another run has been writing to this history" in line)
    assert "set LEADSCORE_HISTORY_WAIT to wait longer" in line
    assert [scored for _, scored, _, _ in stored(history_target)] == [3000]
