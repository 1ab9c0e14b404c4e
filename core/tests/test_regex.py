"""`matches` runs on RE2: linear time whatever the pattern, the same answers as Python's re on the
patterns both accept, and `check` refuses what RE2 cannot run with what to write instead."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.rulepack.regex import Regex, RegexError

ROOT = Path(__file__).resolve().parents[2]

# Patterns from the docs, the README and the differential tests, and the usual shapes of URL,
# title and domain rules.
PATTERNS = [".*/pricing/enterprise.*", "/docs/.*", ".*cto.*", "(co-)?founder|ceo", ".*vp.*", "(software|technology)",
            "u.*", "é", "[A-Z]+", "", r"\d+ (vp|cto)", r"[a-z0-9.-]+\.(io|com)", r"(?i)vp|vice president",
            r".*\bsales\b.*", r"[^/]+/[^/]+", r"a{2,3}b?", r"\s*x\s*"]
TEXT = st.lists(st.sampled_from([*"aAbBcC/. -_09vpctoéVP\n\tx", "pricing", "/docs/", "enterprise", "sales", "io",
                                 "com", "ceo", "founder", "software"]), max_size=12).map("".join) | st.text(max_size=20)


def _shipped_patterns() -> list[str]:
    import tomllib

    sources = [files("leadscore") / "rulepacks" / "firr-base.toml",
               *sorted((ROOT / "plugins").glob("*/src/*/rulepacks/*.toml")), *sorted(ROOT.glob("rulepacks/**/*.toml"))]
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("matches"), str):
                found.append(value["matches"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for source in sources:
        walk(tomllib.loads(source.read_text(encoding="utf-8")))
    return found


@settings(max_examples=300, deadline=None)
@given(pattern=st.sampled_from(PATTERNS + _shipped_patterns()), text=TEXT)
def test_re2_agrees_with_python_re_on_the_patterns_in_use(pattern, text):
    # Python's re with ASCII classes is the meaning the language documents; RE2 must give the same answer.
    assert (Regex(pattern).fullmatch(text) is not None) == (re.fullmatch(pattern, text, re.ASCII) is not None)


def test_matches_is_the_whole_value():
    assert Regex("vp").fullmatch("vp") is not None
    assert Regex("vp").fullmatch("svp of sales") is None
    assert Regex(".*vp.*").fullmatch("svp of sales") is not None


@pytest.mark.parametrize(("pattern", "why", "fix"), [
    (r"(a)\1", r"invalid escape sequence: \1", "RE2 has no backreferences; spell out the repeated text, or compare "
                                               "it in a second condition"),
    ("(?P<x>a)(?P=x)", "invalid perl operator: (?P", "RE2 has no backreferences"),
    ("(?=pricing).*", "invalid perl operator: (?=", "RE2 has no lookahead or lookbehind; combine two conditions"),
    ("(?<!x)y", "invalid perl operator: (?<!", "RE2 has no lookahead or lookbehind"),
    (r"abc\Z", r"invalid escape sequence: \Z", r"RE2 has no \Z"),
    ("a++", "bad repetition operator: ++", "RE2 has no atomic groups or possessive quantifiers"),
    ("(abc", "missing ): (abc", "write an RE2 regular expression"),
])
def test_what_re2_cannot_compile_says_what_to_write_instead(pattern, why, fix):
    with pytest.raises(RegexError) as info:
        Regex(pattern)
    assert info.value.why == why and info.value.fix.startswith(fix)


def test_compiling_a_bad_pattern_prints_nothing(capfd):
    with pytest.raises(RegexError):
        Regex(r"(a)\1")
    assert capfd.readouterr() == ("", "")


def test_a_regex_compares_by_pattern_and_pickles():
    assert Regex("a.*") == Regex("a.*") and hash(Regex("a.*")) == hash(Regex("a.*"))
    assert Regex("a.*") != Regex("b.*")
    assert pickle.loads(pickle.dumps(Regex("a.*"))).fullmatch("abc") is not None


def test_a_lone_surrogate_does_not_raise():
    assert Regex(".*").fullmatch("a\ud800b") is not None


PACK = """\
[pack]
name = "slow"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[[rules]]
id = "intent.slow"
category = "intent"
points = 5
on = "page_view"
reason = "Visited a page of a's"
when = { signal = "event.url", matches = "(a+)+$" }
"""


def _durable_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("durable_rules_engine") is not None


@pytest.mark.parametrize("engine", ["python", pytest.param("durable", marks=pytest.mark.skipif(
    not _durable_installed(), reason="the durable backend needs durable-rules (uv sync --group durable)"))])
def test_a_catastrophic_pattern_scores_a_long_value_at_once(tmp_path, engine):
    # With backtracking, (a+)+$ against 40 a's and a "!" takes longer than any test run (24 chars took
    # 3 s, each more doubles it); RE2 answers in microseconds. The timeout turns a hang into a failure.
    (tmp_path / "slow.toml").write_text(PACK)
    leads = tmp_path / "leads.jsonl"
    url = "a" * 5000
    leads.write_text("".join(json.dumps({"id": f"L-{i}", "activities": [
        {"type": "page_view", "at": "2026-11-20T00:00:00Z", "properties": {"url": text}}]}) + "\n"
        for i, text in enumerate([url + "!", url])))
    done = subprocess.run([sys.executable, "-c", "from leadscore_cli.main import main; main()", "score", str(leads), "-r", str(tmp_path / "slow.toml"),
                           "--as-of", "2026-11-23", "--format", "jsonl", "--engine", engine, "--explain"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rules = [[line["rule_id"] for line in json.loads(row)["ledger"]] for row in done.stdout.splitlines()]
    assert ["intent.slow" in r for r in rules] == [False, True]
