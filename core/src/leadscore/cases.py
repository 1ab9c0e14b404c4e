"""Rulepack case files: a lead in, the expected band / points / route / reasons out.

A case file is TOML; see docs/cases.md. This is how a team tests a rulepack on sample leads,
from ``leadscore test`` locally and in CI, or as parametrised pytest tests
(``leadscore.testing.case_params``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from attrs import frozen

from leadscore.errors import InputError, LeadscoreError, PluginFault, describe_failure
from leadscore.files import TomlError, parse_toml, read_text_file
from leadscore.io.readers import ReadReport, lead_from_dict, read_leads
from leadscore.model import Lead, Rejection, ScoreCard

CASE_KEYS = ("name", "lead", "leads", "activities", "map", "rulepacks", "as_of", "expect", "engine", "accounts")
EXPECT_KEYS = ("band", "total", "total_between", "route", "reasons", "rules", "not_rules", "subscores", "packs",
               "points_band")


@frozen
class Case:
    name: str
    file: str
    line: int
    lead: Lead
    rulepacks: tuple[str, ...] | None
    as_of: datetime
    expect: Mapping[str, Any]
    engine: str = "python"
    account_leads: tuple[Lead, ...] = ()
    """With ``accounts = true``: every lead of the leads file, for the account roll-up."""


@frozen
class CaseResult:
    case: Case
    problems: tuple[str, ...]
    card: ScoreCard | None

    @property
    def passed(self) -> bool:
        return not self.problems


def _utc(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    raise InputError(where, f"as_of {value!r} is not a date-time", "write a TOML date-time such as 2026-11-23T00:00:00Z")


def _case_lines(text: str) -> list[int]:
    return [no for no, line in enumerate(text.splitlines(), 1) if line.strip().replace(" ", "") == "[[cases]]"]


def load_cases(path: str | Path) -> list[Case]:
    """Read one case file; problems raise InputError with ``file:line``."""
    path = Path(path)
    text = read_text_file(path, "case file", InputError)
    try:
        data = parse_toml(text)
    except TomlError as err:
        raise InputError(f"{path}:{err.line}" if err.line else str(path), err.what, err.fix or "fix the syntax") from None
    defaults = data.get("defaults", {})
    raw_cases = data.get("cases", [])
    if not raw_cases:
        raise InputError(str(path), "no [[cases]] in this file", "add at least one [[cases]] table")
    lines = _case_lines(text)
    base = path.parent
    leads_cache: dict[tuple[Path, Path | None, Path | None], dict[str, Lead]] = {}
    cases = []
    for index, raw in enumerate(raw_cases):
        line = lines[index] if index < len(lines) else 0
        where = f"{path}:{line}"
        merged = {**defaults, **raw}
        unknown = sorted(set(merged) - set(CASE_KEYS))
        if unknown:
            raise InputError(where, f"unknown case key `{unknown[0]}`", f"use one of {', '.join(CASE_KEYS)}")
        name = merged.get("name") or f"case {index + 1}"
        expect = merged.get("expect")
        if not isinstance(expect, dict) or not expect:
            raise InputError(where, f"case {name!r} has no [cases.expect] table", 'add e.g. expect = { band = "mql" }')
        bad = sorted(set(expect) - set(EXPECT_KEYS))
        if bad:
            raise InputError(where, f"case {name!r}: unknown expectation `{bad[0]}`", f"use one of {', '.join(EXPECT_KEYS)}")
        if "as_of" not in merged:
            raise InputError(where, f"case {name!r} has no as_of", "pin the scoring time: as_of = 2026-11-23T00:00:00Z")
        lead_spec = merged.get("lead")
        if isinstance(lead_spec, dict):
            lead = lead_from_dict(lead_spec, where)
        elif isinstance(lead_spec, str):
            if "leads" not in merged:
                raise InputError(where, f"case {name!r} names lead {lead_spec!r} but no `leads` file",
                                 'add leads = "leads.jsonl" (relative to the case file)')
            lead = _leads_file(_source(base, merged, where, name), leads_cache).get(lead_spec)
            if lead is None:
                raise InputError(where, f"case {name!r}: lead {lead_spec!r} is not in {merged['leads']}",
                                 "check the id, or give the lead inline as a table")
        else:
            raise InputError(where, f"case {name!r} needs `lead`", "an id from the leads file, or an inline table")
        rulepacks = merged.get("rulepacks")
        if rulepacks is not None:
            rulepacks = tuple(str((base / r).resolve()) if str(r).endswith(".toml") else str(r) for r in rulepacks)
        account_leads: tuple[Lead, ...] = ()
        if merged.get("accounts"):
            if "leads" not in merged:
                raise InputError(where, f"case {name!r}: accounts = true needs a `leads` file",
                                 "the account roll-up groups the leads of that file")
            account_leads = tuple(_leads_file(_source(base, merged, where, name), leads_cache).values())
        cases.append(Case(str(name), str(path), line, lead, rulepacks, _utc(merged["as_of"], where), expect,
                          str(merged.get("engine", "python")), account_leads))
    return cases


def _source(base: Path, merged: Mapping[str, Any], where: str, name: Any) -> tuple[Path, Path | None, Path | None]:
    """(leads file, activities file, map file) of a case, resolved against the case file's folder.

    A CSV leads file keeps its activities in a second file, so a case on one must say which
    (``activities = "activities.csv"``) or that there is none (``activities = false``): a case that
    silently scored a lead without its activities would pin the wrong result.
    """
    leads = (base / merged["leads"]).resolve()
    activities = merged.get("activities")
    if activities is None and leads.suffix.lower() == ".csv":
        raise InputError(where, f"case {name!r}: the leads file {merged['leads']} is CSV, whose activities live in a "
                         "separate file, and the case names none",
                         'add activities = "activities.csv" (relative to the case file), or activities = false '
                         "when these leads have none")
    if activities is not None and not isinstance(activities, (str, bool)) or activities is True:
        raise InputError(where, f"case {name!r}: activities must be a file name or false",
                         'e.g. activities = "activities.csv"')
    column_map = merged.get("map")
    if column_map is not None and not isinstance(column_map, str):
        raise InputError(where, f"case {name!r}: map must be hubspot, salesforce or a .toml file", 'e.g. map = "crm.toml"')
    map_path = None if column_map is None else (Path(column_map) if column_map in ("hubspot", "salesforce")
                                                 else (base / column_map).resolve())
    return leads, (base / activities).resolve() if isinstance(activities, str) else None, map_path


def _leads_file(source: tuple[Path, Path | None, Path | None],
                cache: dict[tuple[Path, Path | None, Path | None], dict[str, Lead]]) -> dict[str, Lead]:
    """The leads of a case's leads file (with its activities file and map) by id, read once each."""
    if source not in cache:
        cache[source] = _index(*source)
    return cache[source]


def _index(path: Path, activities: Path | None, map_path: Path | None) -> dict[str, Lead]:
    from leadscore.io.maps import load_map

    report = ReadReport()
    column_map = load_map(map_path) if map_path is not None else None
    out: dict[str, Lead] = {}
    for item in read_leads(path, activities=activities, column_map=column_map, report=report):
        if isinstance(item, Rejection):
            raise InputError(item.where, f"sample lead rejected: {item.reason}", "fix the leads file")
        out[item.id] = item
    # A case pins a result: an activity the reader had to leave out would change it unseen.
    for skipped in report.skipped[:1]:
        raise InputError(skipped.where, f"sample {skipped.reason}", "fix the activities")
    return out


def check(card: ScoreCard, expect: Mapping[str, Any]) -> list[str]:
    """Every difference between a card and the expectations, as readable lines."""
    problems = []
    if "band" in expect and card.band != expect["band"]:
        notes = f" (gate: {'; '.join(card.gate_notes)})" if card.gate_notes else ""
        problems.append(f"band: expected {expect['band']!r}, got {card.band!r} with {card.total} points{notes}")
    if "points_band" in expect and card.points_band != expect["points_band"]:
        problems.append(f"points_band: expected {expect['points_band']!r}, got {card.points_band!r}")
    if "total" in expect and card.total != expect["total"]:
        problems.append(f"total: expected {expect['total']}, got {card.total}")
    if "total_between" in expect:
        lo, hi = expect["total_between"]
        if not lo <= card.total <= hi:
            problems.append(f"total: expected between {lo} and {hi}, got {card.total}")
    if "route" in expect:
        action = card.route.action if card.route else None
        if action != expect["route"]:
            problems.append(f"route: expected {expect['route']!r}, got {action!r}")
    reasons = [c.reason for c in card.ledger]
    for wanted in expect.get("reasons", ()):
        if not any(wanted in r for r in reasons):
            problems.append(f"reason missing: {wanted!r} (reasons: {'; '.join(reasons) or 'none'})")
    fired = {c.rule_id for c in card.ledger if c.kind == "rule" and c.points != 0}
    for rid in expect.get("rules", ()):
        if rid not in fired:
            problems.append(f"rule {rid!r} expected to score but did not (scored: {', '.join(sorted(fired)) or 'none'})")
    for rid in expect.get("not_rules", ()):
        if rid in fired:
            problems.append(f"rule {rid!r} scored but should not have")
    subs = card.subscore_map
    for cat, points in expect.get("subscores", {}).items():
        if subs.get(cat) != points:
            problems.append(f"subscore {cat}: expected {points}, got {subs.get(cat)}")
    if "packs" in expect:
        names = [name for name, _ in card.packs]
        if sorted(names) != sorted(expect["packs"]):
            problems.append(f"packs: expected {sorted(expect['packs'])}, got {sorted(names)}")
    return problems


def run_cases(cases: Sequence[Case], plugins: Any = None) -> Iterator[CaseResult]:
    """Score each case with an Engine per (rulepacks, engine) combination."""
    from leadscore.accounts import account_key
    from leadscore.engine import Engine

    engines: dict[tuple[Any, str], Engine] = {}
    try:
        for case in cases:
            key = (case.rulepacks, case.engine)
            engine = engines.get(key)
            if engine is None:
                engine = engines[key] = Engine(plugins=plugins, rulepacks=case.rulepacks, backend=case.engine)
            try:
                account = None
                if case.account_leads:
                    index = engine.build_accounts(case.account_leads, case.as_of)
                    account = index.signals_for(account_key(case.lead))
                card = engine.score_lead(case.lead, case.as_of, account)
            except (LeadscoreError, LookupError, ValueError, PluginFault) as err:
                yield CaseResult(case, (f"could not be scored: {err}",), None)
                continue
            except Exception as err:  # a plugin failing on one case must not stop the others
                yield CaseResult(case, (f"could not be scored: {describe_failure(err)}",), None)
                continue
            yield CaseResult(case, tuple(check(card, case.expect)), card)
    finally:
        for engine in engines.values():
            engine.close()
