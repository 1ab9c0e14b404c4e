"""The files a user names: bounded reading of rulepacks and case files, atomic outputs that never
overwrite an input, and TOML errors as one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leadscore.errors import InputError, RulepackErrors
from leadscore.files import (
    AtomicOutput,
    OutputError,
    TomlError,
    parse_toml,
    read_text_file,
    refuse_overwriting_inputs,
)
from leadscore.rulepack.loader import read_source


def test_read_text_file_reads_utf8(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("name = 'é'\n", encoding="utf-8")
    assert read_text_file(path, "rulepack", InputError) == "name = 'é'\n"


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "{p}: rulepack not found; check the path"),
    (lambda p: (p.mkdir(), p)[1], "{p}: is a directory; pass the path of a rulepack, not of a folder"),
    (lambda p: Path("/dev/zero"), "/dev/zero: is not a regular file (a device, pipe or socket); save the rulepack "
                                  "to a file and pass its path"),
    (lambda p: (os.mkfifo(p), p)[1], "{p}: is not a regular file (a device, pipe or socket); save the rulepack "
                                     "to a file and pass its path"),
    (lambda p: (p.write_bytes(b"a\nb\xff\n"), p)[1], "{p}:2: not UTF-8 text (invalid start byte); save the "
                                                       "rulepack as UTF-8"),
])
def test_read_text_file_refuses_in_one_line(tmp_path, make, message):
    path = make(tmp_path / "x")
    with pytest.raises(InputError) as info:
        read_text_file(path, "rulepack", InputError)
    assert str(info.value) == message.format(p=path)


def test_read_text_file_has_a_size_limit(tmp_path):
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * 101)
    with pytest.raises(InputError, match=r"big.toml: rulepack is larger than 9.53674e-05 MiB; a rulepack holds at "
                                         r"most 9.53674e-05 MiB; split it"):
        read_text_file(path, "rulepack", InputError, limit=100)
    assert read_text_file(path, "rulepack", InputError, limit=101) == "#" * 101


def test_rulepack_sources_go_through_the_limits(tmp_path):
    with pytest.raises(RulepackErrors) as info:
        read_source(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory; pass the path of a rulepack, not of a folder"
    with pytest.raises(RulepackErrors, match="rulepack file not found; check the path, or name an installed"):
        read_source(tmp_path / "missing.toml")


@pytest.mark.parametrize(("text", "line", "what"), [
    ("a = 1\nb = [\n", 3, "malformed TOML: "),
    ("a = 1\nb = " + "[" * 3000 + "]" * 3000 + "\n", 2, "malformed TOML: arrays or inline tables nested hundreds "
                                                          "of levels deep"),
    ("a = 1\n\nb = " + "9" * 5000 + "\n", 3, "malformed TOML: a number with thousands of digits"),
])
def test_parse_toml_failures_are_one_line_with_their_line(text, line, what):
    with pytest.raises(TomlError) as info:
        parse_toml(text)
    assert info.value.line == line and info.value.what.startswith(what)
    assert "\n" not in info.value.what and "set_int_max_str_digits" not in info.value.what


# --- outputs ------------------------------------------------------------------------------------


def test_atomic_output_replaces_the_file_only_on_commit(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    out = AtomicOutput(str(path))
    out.write("new\n")
    out.flush()
    assert path.read_text() == "old\n"  # a reader sees the old file until the run completes
    out.commit()
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_output_discard_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), AtomicOutput(str(path)) as out:
        out.write("half")
        raise RuntimeError("stopped")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_output_keeps_the_old_mode_and_follows_links(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with AtomicOutput(str(link)) as out:
        out.write("new")
    assert link.is_symlink() and target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640


def test_atomic_output_writes_devices_straight_through():
    with AtomicOutput("/dev/null") as out:
        out.write("gone")
    assert Path("/dev/null").is_char_device()


def test_atomic_output_full_device_is_one_line():
    out = AtomicOutput("/dev/full")
    with pytest.raises(OutputError) as info:
        out.write("x" * 100)
        out.commit()
    assert str(info.value) == "/dev/full: cannot write: No space left on device; free some space or choose another place"


@pytest.mark.parametrize(("path", "message"), [
    ("missing/out.jsonl", "the folder does not exist; create it first or write somewhere else"),
    (".", "is a directory; name a file to write"),
])
def test_atomic_output_refuses_in_one_line(tmp_path, path, message):
    with pytest.raises(OutputError) as info:
        AtomicOutput(str(tmp_path / path))
    assert str(info.value) == f"{tmp_path / path}: {message}"




def test_an_output_may_not_name_an_input(tmp_path):
    leads = tmp_path / "leads.jsonl"
    leads.write_text("{}\n")
    (tmp_path / "sub").mkdir()
    other = tmp_path / "sub" / ".." / "leads.jsonl"
    with pytest.raises(OutputError) as info:
        refuse_overwriting_inputs([("-o", str(other))], [("input", str(leads))])
    assert str(info.value) == f"{other}: -o would overwrite the input {leads}; write the output to another file"
    link = tmp_path / "link.jsonl"
    link.symlink_to(leads)
    with pytest.raises(OutputError, match="would overwrite the input"):
        refuse_overwriting_inputs([("--rejects", str(link))], [("input", str(leads))])
    with pytest.raises(OutputError, match="-o and --rejects name the same file"):
        refuse_overwriting_inputs([("--rejects", "x.jsonl"), ("-o", "./x.jsonl")], [])
    refuse_overwriting_inputs([("-o", str(tmp_path / "new.jsonl")), ("-o", "-")], [("input", str(leads)),
                                                                                   ("input", "-")])


def test_atomic_output_permission_error_is_one_line(tmp_path, monkeypatch):
    # What a read-only folder gives a user who is not root (tests/ covers it through a read-only mount).
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError) as info:
        AtomicOutput(str(tmp_path / "out.jsonl"))
    assert str(info.value) == f"{tmp_path / 'out.jsonl'}: permission denied; choose a folder you can write to"


def test_commit_all_renames_nothing_when_one_output_fails(tmp_path):
    from leadscore.files import commit_all

    good = tmp_path / "scores.jsonl"
    good.write_text("old\n")
    first, second = AtomicOutput(str(good)), AtomicOutput("/dev/full")
    first.write("new\n")
    second.write("x")
    with pytest.raises(OutputError, match="/dev/full: cannot write"):
        commit_all([first, second])
    assert good.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["scores.jsonl"]
