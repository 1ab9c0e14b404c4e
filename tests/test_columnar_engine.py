"""The columnar engine against the python engine: every extractor's columnar form against its per-lead
form, the command line on files (cards, explain, CSV, rejections), and bad input of every kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb", reason="the columnar engine needs leadscore[columnar]")

from leadscore import Engine, PluginManager  # noqa: E402
from leadscore.columnar import sql as q  # noqa: E402
from leadscore.columnar.engine import Rows, columnar_forms  # noqa: E402
from leadscore.columnar.scan import scan_jsonl  # noqa: E402
from leadscore.model import Activity, Company, ExtractContext, Lead  # noqa: E402
from leadscore_cli.main import build_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "rulepacks" / "samples"
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


# --- every columnar extractor equals its per-lead form ------------------------------------------

TYPES = ("pricing_page_visit", "demo_request", "email_open", "email_click", "page_view", "content_download",
         "service_page_visit", "webinar_registration", "unsubscribe", "custom_thing")
ASSETS = ("The Lead Scoring Playbook", "Revenue Operations 101", "Cooking tips", "", "B2B funnel guide")


def _at(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def _props(url: str | None, asset: str | None, stage: str | None, campaign: str | None) -> dict[str, Any]:
    found = {"url": url, "asset": asset, "stage": stage, "campaign_type": campaign}
    return {k: v for k, v in found.items() if v is not None}


activity = st.builds(
    lambda t, d, url, asset, stage, campaign: Activity(t, _at(d), _props(url, asset, stage, campaign)),
    st.sampled_from(TYPES), st.sampled_from((0, 0.5, 1, 6.9, 7, 13.9, 14, 29, 30, 31, 89, 90, 91, 200, -1)),
    st.one_of(st.none(), st.sampled_from(("/pricing", "/resources/lead-scoring-playbook", ""))),
    st.one_of(st.none(), st.sampled_from(ASSETS)),
    st.one_of(st.none(), st.sampled_from(("bofu", "Top", "middle of funnel", "awareness"))),
    st.one_of(st.none(), st.sampled_from(("nurture", "Nurture", "event"))),
)
lead = st.builds(
    lambda i, email, title, source, created, employees, revenue, industry, country, tier, domain, fields, acts: Lead(
        f"L-{i}", email=email, title=title, source=source, created_at=created,
        company=Company(name="Acme", domain=domain, industry=industry, employees=employees, annual_revenue=revenue,
                        country=country, tier=tier),
        fields=fields, activities=acts),
    st.integers(0, 10**6),
    st.sampled_from(("dana@acme.io", "Bob@Gmail.com", "x@mailinator.com", "info@acme.io", "s@mit.edu", "bad-email",
                     " Élise@Acme.io ", "a@b@acme.io", "", None)),
    st.sampled_from(("VP Marketing", "Chief Executive Officer", "Head of Sales Ops", "Marketing Intern", "fp&a lead",
                     "DIRECTEUR GÉNÉRAL", " ", "", None)),
    st.sampled_from(("linkedin_ads", "Content-Syndication", "webinar", "G2", "", None)),
    st.sampled_from((None, _at(3), _at(400))),
    st.sampled_from((None, 0, 9, 10, 99, 100, 999, 1000, 5000, 250_000)),
    st.sampled_from((None, 0.0, 999_999.5, 1e7, 5e7, 2.5e8, 1e9, 1234567.5)),
    st.sampled_from(("software", "Hospital & Health Care", "b2b_software", "Ünïcode Industry", "", None)),
    st.sampled_from(("US", "united states", " de ", "Cuba", "", None)),
    st.sampled_from(("Strategic", " target ", "tier 3", "", None)),
    st.sampled_from(("acme.io", "WWW.Acme.IO", "eu.acme.io", "", None)),
    st.dictionaries(st.sampled_from(("plan", "budget_confirmed", "score")),
                    st.one_of(st.sampled_from(("pro", "x")), st.booleans(), st.integers(-5, 10**6),
                              st.sampled_from((0.5, -0.0, 3.0, 1e16, 5e-324, 1234567.5, 2.5e-7, -12.25))), max_size=3),
    st.lists(activity, max_size=12),
)


def _signals_per_lead(extractor: Any, wanted: frozenset[str], leads: list[Lead], vocabulary: Any) -> list[dict]:
    ctx = ExtractContext(AS_OF, vocabulary, wanted)
    out = []
    for item in leads:
        ordered = item if item.activities.in_time_order() else Lead(
            item.id, item.email, item.title, item.source, item.created_at, item.account_id, item.company,
            item.fields, item.activities.by_time())
        found = {s.name: (s.value, s.observed_at, s.evidence) for s in extractor.fn(ordered, ctx)}
        out.append({k: v for k, v in found.items() if k in wanted or not wanted})
    return out


def _signals_columnar(engine: Engine, form: Any, wanted: frozenset[str], leads: list[Lead]) -> list[dict]:
    scorer = engine.columnar_scorer(AS_OF)
    rows = Rows(scorer.numeric_fields)
    for k, item in enumerate(leads):
        rows.add(k, item, q.micros(AS_OF))
    leads_table, acts_table = rows.tables()
    con = scorer.con
    con.register("t_leads", leads_table)
    con.register("t_acts", acts_table)
    ctx = scorer.plan.context("t_leads", "t_acts")
    ctx = type(ctx)(ctx.as_of, ctx.as_of_us, ctx.vocabulary, wanted, ctx.leads, ctx.activities, ctx.udfs)
    select = form(ctx)
    scorer.plan.udfs.register(con)
    found: list[dict] = [{} for _ in leads]
    if select is None:
        return found
    for row in con.sql(q.sql(select)).to_arrow_table().to_pylist():
        signals = found[row["k"]]
        for name in wanted:
            if row.get(name) is None:
                continue
            value = row[name]
            kind = scorer.plan._kind(name)
            if kind == "dt":
                value = q.EPOCH + timedelta(microseconds=value)
            elif kind == "any":
                value = {"str": value["s"], "bool": value["b"]}.get(value["k"], value["n"])
                value = int(value) if isinstance(value, float) and value.is_integer() else value
            at = row[name + "#at"]
            signals[name] = (value, None if at is None else q.EPOCH + timedelta(microseconds=at), row[name + "#ev"])
    return found


WANTED = frozenset({
    "email.type", "email.domain", "email.is_business", "email.matches_company", "email.is_role",
    "email.is_competitor", "title.seniority", "title.function", "title.is_decision_maker", "title.text",
    "company.industry", "company.employees", "company.size_band", "company.annual_revenue", "company.revenue_band",
    "company.country", "company.region", "company.domain", "company.name", "company.tier", "lead.source",
    "lead.channel", "lead.age_days", "fields.plan", "fields.budget_confirmed", "fields.score",
    "activity.page_view.count", "activity.page_view.count_7d", "activity.email_open.count_30d",
    "activity.pricing_page_visit.last_at", "activity.demo_request.first_at", "activity.page_view.days_since_last",
    "intent.high.count_30d", "intent.readiness.count_30d", "intent.beyond_email.count_90d", "intent.any.count",
    "intent.low.last_at", "intent.other.count", "intent.email.days_since_last",
    "enterprise.account_tier", "midmarket.high_intent_types_14d",
    "syndication.downloads_90d", "syndication.top_funnel_downloads_90d", "syndication.topic_match",
    "syndication.topics_matched", "syndication.relevant_downloads_90d", "syndication.nurture_clicks_90d",
    "syndication.service_page_after_download", "syndication.follow_ups_90d",
})


@pytest.fixture(scope="module")
def engine() -> Engine:
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as made:
        yield made


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(lead, min_size=1, max_size=12))
def test_every_columnar_extractor_equals_its_per_lead_form(engine: Engine, batch: list[Lead]) -> None:
    forms = columnar_forms(engine)
    for extractor in engine.extractors:
        form = forms.get(extractor.name)
        if form is None:
            continue
        names = frozenset(n for n in WANTED if any(_provides(spec.name, n) for spec in extractor.provides))
        want = _signals_per_lead(extractor, names, batch, engine.vocabulary)
        got = _signals_columnar(engine, form, names, batch)
        for item, expected, actual in zip(batch, want, got):
            assert actual == expected, f"{extractor.name}: lead {item.id} differs"


def _provides(pattern: str, name: str) -> bool:
    parts, wanted = pattern.split("."), name.split(".")
    return len(parts) == len(wanted) and all(p in ("*", w) for p, w in zip(parts, wanted))


def test_the_built_ins_and_the_shipped_plugins_all_have_a_columnar_form(engine: Engine) -> None:
    forms = columnar_forms(engine)
    per_lead_only = [ex.name for ex in engine.extractors if ex.name not in forms and ex.name != "account"]
    assert per_lead_only == []


# --- the command line on files ------------------------------------------------------------------


def _score(tmp_path: Path, source: Path, engine: str, *extra: str) -> tuple[int, str, str, str]:
    # The same paths for every engine: the summary line names them.
    out = tmp_path / f"out.{'csv' if '--format=csv' in extra else 'jsonl'}"
    rejects = tmp_path / "rejects.jsonl"
    out.unlink(missing_ok=True)
    rejects.unlink(missing_ok=True)
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), "--as-of", "2026-11-23", "--engine", engine, "-o", str(out), "--rejects", str(rejects),
        *extra])
    summary = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    return (result.exit_code, out.read_text(encoding="utf-8") if out.exists() else "",
            rejects.read_text(encoding="utf-8") if rejects.exists() else "", summary)


def _generated(tmp_path: Path, leads: int, seed: int, *more: str) -> Path:
    """``bench/generate.py``'s leads as ``generated.jsonl``, with the lines ``more`` after them."""
    import subprocess
    import sys

    source = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--leads", str(leads), "--seed", str(seed),
                    "-o", str(source)], check=True)
    with source.open("a", encoding="utf-8") as handle:
        handle.writelines(f"{line}\n" for line in more)
    return source


# An odd line (read the python way), a duplicate id and a blank line.
ODD_AND_DUPLICATE = ('{"id": "L-0000003", "email": "again@acme.io"}', '{"id": "X-1", "title": "  VP  "}', "")


@pytest.mark.parametrize("name", ["leads.jsonl", "segment-leads.jsonl"])
@pytest.mark.parametrize("extra", [("--explain",), ("--format=csv", "--explain"), ("--format=csv",),
                                   ("-r", "firr-base")])
def test_files_score_byte_identical(tmp_path: Path, name: str, extra: tuple[str, ...]) -> None:
    python = _score(tmp_path, SAMPLES / name, "python", *extra)
    duckdb = _score(tmp_path, SAMPLES / name, "duckdb", *extra)
    assert duckdb == python
    assert python[0] == 0 and python[1]


@pytest.mark.parametrize("extra", [("--explain",), (), ("--format=csv",)])
def test_generated_leads_score_byte_identical(tmp_path: Path, extra: tuple[str, ...]) -> None:
    # Without --explain the columnar engine writes each card's line in SQL (and routes in SQL), JSON or CSV.
    source = _generated(tmp_path, 300, 3)
    assert _score(tmp_path, source, "duckdb", *extra) == _score(tmp_path, source, "python", *extra)


@pytest.mark.slow
def test_blocks_and_the_account_pass_across_them(tmp_path: Path) -> None:
    """A file read in many small blocks scores as one read whole (accounts span blocks)."""
    from leadscore.io import card_to_dict, read_leads
    from leadscore.model import Rejection

    source = _generated(tmp_path, 400, 11)
    with Engine(plugins=PluginManager(), backend="python", as_of=AS_OF) as python:
        leads = list(read_leads(str(source)))
        index = python.build_accounts(leads)
        want = [card_to_dict(c, explain=True) for c in python.score(leads, accounts=index)]
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as duckdb:
        found = scan_jsonl(duckdb, str(source), str(source), AS_OF, explain=True, top=3, block_bytes=60_000)
        assert found is not None
        got = [card_to_dict(c, explain=True) if not isinstance(c, Rejection) else c for c in found]
    assert got == want


def test_account_sums_duckdb_cannot_make_end_the_run_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When DuckDB cannot sum up the accounts (after reading every contact, before any card), the run
    stops with one line naming the file and the way out, and writes no cards."""
    import duckdb

    from leadscore.columnar.accounts import AccountPass

    def out_of_memory(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 16.0 MiB\nmore")

    monkeypatch.setattr(AccountPass, "finish", out_of_memory)
    out = tmp_path / "cards.jsonl"
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(SAMPLES / "segment-leads.jsonl"), "--as-of", "2026-11-23", "--engine", "duckdb", "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.strip().splitlines()[-1] == (
        f"leadscore: {SAMPLES / 'segment-leads.jsonl'}: the columnar engine could not sum up the accounts of this "
        "file in DuckDB (Out of Memory Error: failed to allocate data of size 16.0 MiB); score it with a memory limit "
        "above 200MB (--memory-limit) or --engine python")


def test_duckdb_prints_no_progress_bar_where_the_cards_may_be_going(tmp_path: Path) -> None:
    """DuckDB draws a progress bar on standard output for a statement of over two seconds (a large
    file's account sums, say): on the scorer's connection and the history database's it is off."""
    from leadscore.columnar.activities import SqlActivityTable
    from leadscore.history.duckdb_store import DuckDBStore

    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as engine:
        scorer = engine.columnar_scorer(AS_OF, explain=False, values=False, render="jsonl")
        assert scorer.con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
        table = SqlActivityTable()
        table.attach(scorer)  # its cursor's setting is its own
        assert table.cur.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
    store = DuckDBStore(str(tmp_path / "history.duckdb"), create=True)
    try:
        assert store.con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
    finally:
        store.close()


def test_the_account_pass_reads_and_sums_under_limits_of_its_own_and_scores_under_the_scorers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While the account pass reads blocks DuckDB's memory limit is the pass's (the contacts wait on
    disk), while it sums them up the sums' (ACCOUNT_SUMS_MEMORY); the scoring pass runs under the
    scorer's own limit."""
    from leadscore.columnar.accounts import AccountPass

    summing: list[str] = []
    sum_part = AccountPass._sum_part

    def noted(self: Any, *args: Any) -> None:
        summing.append(limit())
        sum_part(self, *args)

    monkeypatch.setattr(AccountPass, "_sum_part", noted)

    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as engine:
        scorer = engine.columnar_scorer(AS_OF, explain=False, values=False, render="jsonl")
        limit = lambda: scorer.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # noqa: E731
        own = limit()
        account_pass = AccountPass(engine, scorer, AS_OF)
        with account_pass.reading():
            reading = limit()
        assert reading != own and reading.startswith("114") and limit() == own
        with pytest.raises(RuntimeError), account_pass.reading():
            raise RuntimeError("a read that fails half-way")
        assert limit() == own
        account_pass.finish()
        assert limit() == own and len(summing) == 1 and summing[0].startswith("114")  # 120MB


def test_each_contacts_account_row_is_sorted_again_under_the_scorers_limit_where_its_own_is_too_small(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sort of each contact's account row into line order runs under a limit of its own; where
    DuckDB runs out of memory in it, it runs again under the scorer's (the one --memory-limit sets and
    an error names), and the cards are those of a run that sorted them the first time."""
    import duckdb

    from leadscore.columnar import accounts

    source = SAMPLES / "segment-leads.jsonl"
    sorted_once = _score(tmp_path, source, "duckdb", "--explain")
    assert sorted_once[0] == 0 and sorted_once[1]
    failed: list[str] = []
    write = accounts.ParquetFolder.write

    def recorded(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            write(self, *args, **kwargs)
        except duckdb.OutOfMemoryException as err:
            failed.append(str(err).splitlines()[0])
            raise

    monkeypatch.setattr(accounts.ParquetFolder, "write", recorded)
    monkeypatch.setattr(accounts, "CONTACT_ACCOUNTS_MEMORY", "1MB")  # too small for the join and the sort
    assert _score(tmp_path, source, "duckdb", "--explain") == sorted_once
    assert len(failed) == 1 and "Out of Memory" in failed[0]


@pytest.mark.parametrize("extra", [("--explain",), ("--dedupe", "--explain"), ("--accounts", "ACCOUNTS"),
                                   ("-r", "firr-base")])
def test_the_account_sums_of_a_part_of_the_accounts_at_a_time_give_the_python_engines_cards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]) -> None:
    """Past PART_CONTACTS contacts the accounts are summed up a part at a time (by a hash of their key,
    so each account is whole in one part), and each contact's account row sorted into line order a
    range of lines at a time, a file each: the cards, their reasons, the account cards of --accounts
    and the runs with --dedupe are the python engine's, with every part counted once."""
    from leadscore.columnar import accounts

    parts: list[int] = []
    sorted_files: list[int] = []
    sum_part, write = accounts.AccountPass._sum_part, accounts.ParquetFolder.write

    def counted(self: Any, contacts: str, first: bool) -> None:
        sum_part(self, contacts, first)
        parts.append(self.scorer.con.execute(f"SELECT count(*) FROM {contacts}").fetchall()[0][0])

    def written(self: Any, con: Any, select: str, row_group: int | None = None) -> None:
        write(self, con, select, row_group)
        if self.folder.name.startswith("contact-accounts-"):
            sorted_files.append(con.execute(f"SELECT count(*) FROM ({select})").fetchall()[0][0])

    source = _generated(tmp_path, 300, 5, *ODD_AND_DUPLICATE)
    args = [str(tmp_path / "accounts.csv") if item == "ACCOUNTS" else item for item in extra]
    python = _score(tmp_path, source, "python", *args)
    in_python = (tmp_path / "accounts.csv").read_text(encoding="utf-8") if "ACCOUNTS" in extra else ""
    monkeypatch.setattr(accounts.AccountPass, "_sum_part", counted)
    monkeypatch.setattr(accounts.ParquetFolder, "write", written)
    monkeypatch.setattr(accounts, "PART_CONTACTS", 40)
    assert _score(tmp_path, source, "duckdb", *args) == python and python[1]  # exit 1: the odd line's rejection
    assert in_python == ((tmp_path / "accounts.csv").read_text(encoding="utf-8") if in_python else "")
    if extra == ("-r", "firr-base"):  # no pack of its reads an account signal: no account pass
        assert parts == []
        return
    assert len(parts) >= 7 and all(parts) and sum(parts) >= 290  # every contact in one part or another
    assert len(sorted_files) == len(parts) and all(sorted_files) and sum(sorted_files) == sum(parts)


def test_the_account_pass_reads_a_signal_relation_of_the_signals_its_contacts_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block's contacts come from a signal relation of the few signals they read (and the pattern
    a shipped pack's same_account rule reads), not the whole one: the same rows as over the whole
    relation, a fraction of its SQL, and the python engine's cards. A reader of more than the
    extractors' signals and the patterns (the combination) gets the whole relation."""
    from sqlglot import exp

    from leadscore.columnar import accounts

    write = accounts.AccountPass.write
    blocks: list[tuple[int, int]] = []

    def compared(self: Any, select: str) -> None:
        reader = self.sql.contacts(self.scorer.same_account[False])
        narrow, whole = self.scorer.signals_read_by(reader), self.scorer.signal_statement(with_accounts=False)
        assert select == f"WITH sig AS ({narrow}) {q.sql(reader)}"
        con = self.scorer.con
        rows = [con.execute(f"SELECT * FROM (WITH sig AS ({made}) {q.sql(reader)}) ORDER BY k").fetchall()
                for made in (narrow, whole)]
        assert rows[0] == rows[1] and rows[0]
        blocks.append((len(narrow), len(whole)))
        reads_combo = reader.copy().select(q.col("combo", "s").as_("c", copy=False), copy=False)
        assert self.scorer.signals_read_by(reads_combo) == whole
        assert '"p0"' in narrow and '"email.type"' not in narrow and isinstance(reader, exp.Select)
        write(self, select)

    source = _generated(tmp_path, 300, 5, *ODD_AND_DUPLICATE)
    python = _score(tmp_path, source, "python", "--explain")
    monkeypatch.setattr(accounts.AccountPass, "write", compared)
    assert _score(tmp_path, source, "duckdb", "--explain") == python and python[1]
    assert blocks and all(narrow * 4 < whole for narrow, whole in blocks)


def test_a_part_of_the_accounts_is_summed_again_under_the_scorers_limit_where_the_sums_own_is_too_small(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where DuckDB runs out of memory summing up a part of the accounts under the sums' own limit,
    the part runs again under the scorer's, from nothing (its transaction rolled back): the cards are
    the python engine's, each account counted once."""
    import duckdb

    from leadscore.columnar import accounts

    source = _generated(tmp_path, 300, 5)
    python = _score(tmp_path, source, "python", "--explain")
    failed: list[str] = []
    sum_part = accounts.AccountPass._sum_part

    def recorded(self: Any, *args: Any) -> None:
        try:
            sum_part(self, *args)
        except duckdb.OutOfMemoryException as err:
            failed.append(str(err).splitlines()[0])
            raise

    monkeypatch.setattr(accounts.AccountPass, "_sum_part", recorded)
    monkeypatch.setattr(accounts, "PART_CONTACTS", 100)
    monkeypatch.setattr(accounts, "ACCOUNT_SUMS_MEMORY", "1MB")  # too small for the sums
    assert _score(tmp_path, source, "duckdb", "--explain") == python and python[0] == 0
    assert len(failed) >= 3 and all("Out of Memory" in error for error in failed)


def test_a_part_of_the_sums_that_fails_half_way_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part of the account sums is one transaction: where a statement fails after others of the part
    ran, the rows the earlier parts made are all the tables hold, and the part's own sums are gone (so
    it can run again without counting an account twice)."""
    import duckdb
    from sqlglot import parse_one

    from leadscore.columnar.accounts import AccountPass

    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as engine:
        scorer = engine.columnar_scorer(AS_OF, explain=False, values=False, render="jsonl")
        account_pass = AccountPass(engine, scorer, AS_OF)
        matched = "".join(f", i % 2 = 0 AS m{index}" for index in range(len(account_pass.signals)))
        with account_pass.reading():
            account_pass.write(f"""SELECT i AS k, 'ACC-' || (i // 3)::VARCHAR AS key, 'L-' || i::VARCHAR AS id,
                'e:p' || i::VARCHAR AS person, true AS engaged, i = 0 AS senior, 'sales' AS function, 1 AS high,
                NULL AS total{matched} FROM range(6) t(i)""")
        account_pass.gather()
        con = scorer.con
        for key, first in (("ACC-0", True), ("ACC-1", False)):
            con.execute(f"CREATE OR REPLACE TEMP VIEW part_contacts AS SELECT * FROM contacts WHERE key = '{key}'")
            if not first:  # the part's sums run, then its account rows cannot be added
                monkeypatch.setattr(account_pass.sql, "by_account", lambda: parse_one("SELECT 'x'::INTEGER AS key"))
                with pytest.raises(duckdb.Error):
                    account_pass._sum_part("part_contacts", first)
            else:
                account_pass._sum_part("part_contacts", first)
        assert con.execute('SELECT key, "account.contacts" FROM account_rows').fetchall() == [("ACC-0", 3)]
        tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "account_sum" not in tables and "same_0" not in tables
        account_pass.close()


NO_SENIOR_PACK = """
[pack]
name = "committee"
version = "1"

[categories.account]

[[rules]]
id = "committee.none_senior"
category = "account"
points = -5
reason = "engaged people at the account, none of them senior"
when = { all = [{ signal = "account.engaged_contacts", gte = 1 }, { signal = "account.senior_engaged_contacts", lt = 1 }] }

[[rules]]
id = "committee.no_functions"
category = "account"
points = -3
reason = "no function engaged at the account"
when = { signal = "account.functions_engaged", eq = 0 }

[[bands]]
name = "low"
min = -100
"""


def test_account_counts_of_people_without_a_title_in_the_sql_account_pass(tmp_path: Path) -> None:
    """The account pass in SQL counts an engaged person without a seniority as not senior (0 senior
    engaged contacts, as the python engine counts them, not an unknown count a rule cannot compare)."""
    from leadscore.io import card_to_dict, read_leads
    from leadscore.model import Rejection

    pack = tmp_path / "committee.toml"
    pack.write_text(NO_SENIOR_PACK, encoding="utf-8")
    source = tmp_path / "untitled.jsonl"
    visit = '"activities": [{"type": "webinar_attended", "at": "2026-11-20T10:00:00Z"}]'
    source.write_text("".join(f'{{"id": "U-{i}", "email": "u{i}@untitled.io", "account_id": "{account}", {visit}}}\n'
                              for i, account in enumerate(("A-UNTITLED", "A-UNTITLED", "A-SOLO")))
                      + f'{{"id": "T-1", "account_id": "A-SOLO", "title": "VP Sales", {visit}}}\n', encoding="utf-8")
    with Engine(plugins=PluginManager(), rulepacks=[pack], as_of=AS_OF) as python:
        leads = list(read_leads(str(source)))
        want = [card_to_dict(c, explain=True) for c in python.score(leads, accounts=python.build_accounts(leads))]
    with Engine(plugins=PluginManager(), rulepacks=[pack], backend="duckdb", as_of=AS_OF) as duckdb:
        assert duckdb.needs_accounts
        found = scan_jsonl(duckdb, str(source), str(source), AS_OF, explain=True, top=3)
        assert found is not None
        got = [card_to_dict(c, explain=True) if not isinstance(c, Rejection) else c for c in found]
        assert not duckdb.columnar_scorer(AS_OF, explain=True, values=False).stats.get("failed_batches")
    assert got == want
    assert [[line["rule_id"] for line in card["ledger"]] for card in want] == [
        ["committee.none_senior", "committee.no_functions"]] * 2 + [[], []]


BEST_PACK = """
[pack]
name = "best"
version = "1"
[categories.fit]
[categories.account]
[[rules]]
id = "best.colleague"
category = "account"
points = 5
reason = "a colleague scored 30 or more"
when = { signal = "account.best_lead_score", gte = 30 }
[[rules]]
id = "best.vp"
category = "fit"
points = 30
reason = "a VP"
when = { signal = "title.seniority", eq = "vp" }
[[bands]]
name = "low"
min = 0
"""


@pytest.mark.parametrize("explain", [(), ("--explain",)])
def test_the_best_contacts_total_is_summed_in_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  explain: tuple[str, ...]) -> None:
    """A pack reading account.best_lead_score: the account pass in SQL makes each contact's total
    before account rules (the plan's steps to the cards), on the JSON Lines scan, every lead in SQL."""
    pack = tmp_path / "best.toml"
    pack.write_text(BEST_PACK, encoding="utf-8")
    source = _generated(tmp_path, 300, 5)
    python = _score(tmp_path, source, "python", "-r", str(pack), *explain)
    monkeypatch.setenv("LEADSCORE_COLUMNAR_STRICT", "1")  # a batch failing in SQL fails the run
    by_python = _python_scored(monkeypatch)
    assert _score(tmp_path, source, "duckdb", "-r", str(pack), *explain) == python
    assert by_python == [] and python[0] == 0 and "a colleague scored 30 or more" in python[1]


# --- bad input: the same rejections, with the same messages, from both engines ----------------------

GOOD = (SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines()
BAD_LINES = [
    '{"id": "B-1", "email": "x@acme.io"',
    "[1, 2]",
    '"just text"',
    "null",
    '{"id": "B-2", "unknown": 1}',
    '{"id": "B-3", "company": {"employees": "many"}}',
    '{"id": "B-4", "activities": [{"type": "page_view", "at": "yesterday"}]}',
    '{"id": "B-5", "activities": [{"type": "page_view", "at": "2026-11-20T10:00:00Z",}]}',
    '{"id": NaN}',
    '{"id": "B-6", "company": {"annual_revenue": Infinity}}',
    '{"id": "B-7", "id": "B-8", "title": "VP Sales"}',
    '{"id": "B-9", "email": 5}',
    '{"id": "  B-10  ", "title": " VP Sales ", "email": " Dana@Acme.io "}',
    '{"id": "B-11", "company": {"employees": 12345678901234567890}}',
    '{"id": "B-12", "fields": {"score": 2.5, "flag": true}}',
    '{"id": "B-13", "fields": {"nested": {"a": 1}}}',
    '{"email": "x@y.io"}',
    '{"id": "B-14", "created_at": "2026-11-20T10:00:00+02:00", "source": "webinar"}',
    '{"id": "B-15", "activities": [{"type": "", "at": "2026-11-20T10:00:00Z"}]}',
    '{"id": "B-16", "email": "\\u00c9lise@Acme.io"}',
    '{"id": 123, "title": "CTO"}',
    '{"id": "B-17", "activities": "nope"}',
    '{"id": "B-18", "activities": [{"type": "page_view", "at": "2026-11-20T10:00:00Z", "properties": {"url": 5}}]}',
    '{"id": "B-19", "company": {"employees": 1200.0, "annual_revenue": "250000000"}}',
    '{"id": "B-20", "activities": [{"type": "demo_request", "at": "2026-02-30T10:00:00Z"}]}',
    '{"id": "B-21", "fields": {"blank": "   ", "plan": "pro"}}',
    '{"id": "B-22", "account_id": 42, "activities": [{"type": "page_view", "at": "2026-11-20"}]}',
    '{"id": "B-23", "company": {"name": "Acme", "name": "Acme Corp"}}',
    '{"id": "B-24", "activities": [{"type": "page_view", "at": "1066-10-14T09:00:00Z"}]}',
]


def _mixed(tmp_path: Path) -> Path:
    lines = []
    for index, bad in enumerate(BAD_LINES):
        lines += [GOOD[index % len(GOOD)], bad]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_lines_are_rejected_alike_and_the_rest_scored_in_sql(tmp_path: Path) -> None:
    source = _mixed(tmp_path)
    python = _score(tmp_path, source, "python", "--explain")
    duckdb = _score(tmp_path, source, "duckdb", "--explain")
    assert duckdb == python
    code, out, rejects, summary = python
    read = 2 * len(BAD_LINES)
    scored, rejected = len(out.splitlines()), len(rejects.splitlines())
    # A bad activity costs only itself (it is left out and listed); the other bad lines are rejected.
    assert code == 1 and scored + rejected == read and rejected >= 12
    assert summary.startswith(f"scored {scored} + rejected {rejected} (see {tmp_path / 'rejects.jsonl'}) == read {read}; ")
    assert summary.endswith("activities left out (listed above)")
    reasons = [json.loads(line)["reason"] for line in rejects.splitlines()]
    assert any("malformed JSON" in r for r in reasons) and any("unknown key 'unknown'" in r for r in reasons)
    # The columnar engine read this file itself (only the odd lines went to the python reader).
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as engine:
        assert scan_jsonl(engine, str(source), str(source), AS_OF, explain=False, top=3) is not None


@pytest.mark.parametrize("content", [
    b"\xef\xbb\xbf" + GOOD[0].encode() + b"\n" + GOOD[1].encode() + b"\n",
    GOOD[0].encode() + b"\n\n   \n" + GOOD[1].encode() + b"\n",
    GOOD[0].encode() + b"\n" + b'{"id": "X-1", "title": "caf\xe9"}\n' + GOOD[1].encode() + b"\n",
    b'{"id": "X-2", "email": "\\ud800@x.io"}\n' + GOOD[2].encode() + b"\n",
])
def test_files_duckdb_cannot_read_as_lines_are_read_the_python_way(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "odd.jsonl"
    source.write_bytes(content)
    assert _score(tmp_path, source, "duckdb") == _score(tmp_path, source, "python")


def test_empty_and_missing_files_fail_alike(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    for source in (empty, tmp_path / "missing.jsonl"):
        runs = [CliRunner().invoke(build_cli(PluginManager()), ["score", str(source), "--engine", e])
                for e in ("python", "duckdb")]
        assert runs[0].exit_code == runs[1].exit_code == 2
        assert runs[0].stderr == runs[1].stderr


def test_auto_engine_picks_by_file_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import leadscore_cli.main as cli_main
    from leadscore_cli.main import choose_engine

    small = SAMPLES / "leads.jsonl"
    assert small.stat().st_size < cli_main.AUTO_COLUMNAR_BYTES
    assert choose_engine("auto", str(small)) == "python"
    monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_BYTES", 100_000)  # not 64 MB of test file
    big = tmp_path / "big.jsonl"
    big.write_bytes((GOOD[0] + "\n").encode() * (cli_main.AUTO_COLUMNAR_BYTES // len(GOOD[0]) + 1))
    assert choose_engine("auto", str(tmp_path / "missing.jsonl")) == "python"  # not a file
    assert choose_engine("auto", str(big)) == "duckdb"
    assert choose_engine("auto", "-") == "python"
    assert choose_engine("python", str(big)) == "python"
    assert choose_engine("auto", str(big), reads_itself=False) == "python"  # the python reader's leads
    # With the account pass the python engine is the faster one up to about 60,000 leads (200 MB).
    assert choose_engine("auto", str(big), needs_accounts=True) == "python"
    monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_ACCOUNTS_BYTES", big.stat().st_size)
    assert choose_engine("auto", str(big), needs_accounts=True) == "duckdb"


def _engines_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the engines the CLI builds from now on, in order."""
    import leadscore_cli.main as cli_main

    engines, make = [], cli_main._engine

    def recorded(pm: Any, rulepacks: Any, engine_name: str, when: Any, **options: Any) -> Any:
        engines.append(engine_name)
        return make(pm, rulepacks, engine_name, when, **options)

    monkeypatch.setattr(cli_main, "_engine", recorded)
    return engines


def test_score_chooses_the_engine_by_the_input_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``leadscore score`` without --engine is --engine auto: the columnar engine past the threshold,
    the python engine below it and whenever --engine python says so; the same cards either way."""
    import leadscore_cli.main as cli_main

    engines = _engines_built(monkeypatch)
    outputs = []
    for threshold, told in ((1, ()), (10**12, ()), (1, ("--engine", "python"))):
        monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_BYTES", threshold)
        result = CliRunner().invoke(build_cli(PluginManager()), [
            "score", str(SAMPLES / "leads.jsonl"), "-r", "firr-base", "--as-of", "2026-11-23", *told])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert engines == ["duckdb", "python", "python"]
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize(("packs", "accounts_bytes", "built"), [
    (("-r", "firr-base"), 10**12, ["duckdb"]),  # no account pass: the 64 MB threshold
    ((), 10**12, ["duckdb", "python"]),  # every installed pack reads account signals: python below 200 MB
    ((), 1, ["duckdb"]),
])
def test_auto_engine_on_the_command_line_weighs_the_account_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packs: tuple[str, ...], accounts_bytes: int,
        built: list[str]) -> None:
    import leadscore_cli.main as cli_main

    monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_BYTES", 1)
    monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_ACCOUNTS_BYTES", accounts_bytes)
    engines = _engines_built(monkeypatch)
    out = tmp_path / "auto.jsonl"
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(SAMPLES / "leads.jsonl"), *packs, "--as-of", "2026-11-23", "--engine", "auto", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert engines == built
    assert out.read_text(encoding="utf-8") == _score(tmp_path, SAMPLES / "leads.jsonl", "python", *packs)[1]



@pytest.mark.parametrize(("source", "extra", "built"), [
    ("leads.jsonl", (), ["duckdb"]),
    ("leads.csv", (), ["duckdb"]),
    ("leads.parquet", (), ["duckdb"]),
    ("leads.csv", ("--activities", str(SAMPLES / "activities.csv")), ["duckdb"]),
    ("leads.csv", ("--map", "MAP"), ["duckdb"]),
    ("leads.csv", ("--map", "MAP", "--activities", str(SAMPLES / "activities.csv")), ["duckdb"]),
    ("leads.csv", ("--map", "ACTIVITY_MAP"), ["duckdb"]),
    ("leads.jsonl", ("--dedupe",), ["duckdb"]),
    ("leads.jsonl", ("--map", "MAP"), ["duckdb"]),
    ("leads.csv", ("--dedupe",), ["duckdb"]),
    ("leads.jsonl", ("--next-steps",), ["python"]),
])
def test_auto_engine_takes_the_columnar_engine_only_for_a_file_it_reads_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, extra: tuple[str, ...], built: list[str]) -> None:
    """A JSON Lines, CSV or Parquet file it reads itself past its size (a CSV or Parquet one with its
    activities file, a CSV export through a map, with activity columns too, a JSON Lines file through
    one, --dedupe); options that
    need every lead as a record first (--next-steps) come through the python reader, where the
    columnar engine is the slower one whatever the size unless a large activities file comes with them."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import leadscore_cli.main as cli_main

    monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_BYTES", 1)
    monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_LEAD_ROWS", 1)
    if "MAP" in extra or "ACTIVITY_MAP" in extra:
        column_map = tmp_path / "map.toml"
        column_map.write_text('[map]\nname = "own"\n\n[lead]\nid = "id"\nemail = "email"\ntitle = "title"\n' + (
            '\n[[activities]]\ncolumn = "created_at"\ntype = "form_submit"\n' if "ACTIVITY_MAP" in extra else ""),
            encoding="utf-8")
        extra = tuple(str(column_map) if item in ("MAP", "ACTIVITY_MAP") else item for item in extra)
    engines = _engines_built(monkeypatch)
    path = SAMPLES / source
    if source == "leads.parquet":
        path = tmp_path / source
        pq.write_table(pacsv.read_csv(SAMPLES / "leads.csv"), path)
    out = tmp_path / "auto.jsonl"
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(path), "-r", "firr-base", *extra, "--as-of", "2026-11-23", "--engine", "auto", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert engines == built
    python = _score(tmp_path, path, "python", "-r", "firr-base", *extra)
    assert python[0] == 0 and out.read_text(encoding="utf-8") == python[1]


@pytest.mark.parametrize(("fmt", "explain", "extra"), [
    ("jsonl", False, ("-rfirr-base",)), ("csv", False, ("-rfirr-base",)), ("jsonl", True, ("-rfirr-base",)),
    ("csv", True, ("-rfirr-base",)), ("jsonl", False, ("-rfirr-base", "--next-steps")),
    ("csv", True, ("-rfirr-base", "--accounts", "ACCOUNTS")), ("jsonl", False, ())])
def test_leads_from_the_python_reader_get_a_plan_of_what_the_output_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, explain: bool, extra: tuple[str, ...]) -> None:
    """Leads the python reader makes (a leads CSV with an activities CSV) are scored on the columnar
    engine with a plan that makes the full ledger only for --explain and the cards' text in SQL where
    nothing reads the card itself (the account cards of --accounts and --next-steps do; every
    installed pack, the default, has the account pass, made in DuckDB, which reads no card); the
    python engine's bytes."""
    from leadscore.columnar.engine import ColumnarScorer

    made: list[tuple[bool, str | None]] = []
    init = ColumnarScorer.__init__

    def noted(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append((self.explain, self.render))

    monkeypatch.setattr(ColumnarScorer, "__init__", noted)
    args = ["--activities", str(SAMPLES / "activities.csv"), f"--format={fmt}", *(("--explain",) if explain else ()),
            *(str(tmp_path / "accounts.csv") if a == "ACCOUNTS" else a for a in extra)]
    duckdb = _score(tmp_path, SAMPLES / "leads.csv", "duckdb", *args)
    accounts = (tmp_path / "accounts.csv").read_text(encoding="utf-8") if "--accounts" in extra else ""
    assert _score(tmp_path, SAMPLES / "leads.csv", "python", *args) == duckdb and duckdb[0] == 0
    assert accounts == ((tmp_path / "accounts.csv").read_text(encoding="utf-8") if accounts else "")
    assert duckdb[3] == "scored 46 + rejected 0 == read 46"
    whole = "--accounts" in extra or "--next-steps" in extra  # the card itself is read: no text made in SQL
    assert made == [(explain, None if whole else fmt)]


@pytest.mark.parametrize("extra", [(), ("--history-ledger",), ("--explain", "--top", "7")])
@pytest.mark.parametrize("packs", [("-rfirr-base",), ()])
def test_a_history_run_on_the_columnar_engine_stores_the_python_engines_cards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...], packs: tuple[str, ...]) -> None:
    """``score --history`` on the columnar engine: the recorder reads each card (its top five reasons,
    and its ledger with --history-ledger), so the plan makes those and no more; the run's output and
    every stored card (reasons and ledger included) are the python engine's. With every installed
    pack the account pass is made in DuckDB, by the scorer that scores the leads next."""
    from leadscore.engine import Engine
    import duckdb as db

    from leadscore.columnar.engine import ColumnarScorer

    made: list[tuple[bool, int, str | None]] = []
    init = ColumnarScorer.__init__

    def noted(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append((self.explain, self.top, self.render))

    monkeypatch.setattr(ColumnarScorer, "__init__", noted)

    def stored(engine: str) -> tuple[tuple[int, str, str, str], list[tuple[Any, ...]]]:
        target = tmp_path / f"{engine}.duckdb"
        out = _score(tmp_path, SAMPLES / "leads.csv", engine, "--activities", str(SAMPLES / "activities.csv"),
                     *packs, "--history", str(target), *extra)
        with db.connect(str(target), read_only=True) as con:
            cards = con.execute("SELECT lead_id, seq, account_key, total, band, points_band, route_action, route_queue, "
                                "subscores, reasons, ledger, snapshot FROM cards ORDER BY lead_id, seq").fetchall()
        return out, cards

    python = stored("python")
    monkeypatch.setattr(Engine, "build_accounts", lambda *args: pytest.fail("the python account pass"))
    assert stored("duckdb") == python and python[0][0] == 0 and len(python[1]) == 46
    assert any(len(json.loads(card[9])) == 5 for card in python[1])  # five reasons stored, three written
    with_ledger = "--history-ledger" in extra
    assert all((card[10] is not None) == with_ledger for card in python[1])
    assert made == [("--explain" in extra or with_ledger, 7 if "--top" in extra else 5, None)]


def records_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's reading of leads as records refused: a run must read its input by the file scan."""
    import leadscore_cli.main as cli_main

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the leads were read as records")

    monkeypatch.setattr(cli_main, "_read", refused)


def test_standard_input_is_scanned_by_the_columnar_engine_and_named_as_standard_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``leadscore score - --engine duckdb`` copies standard input to a file and scans it as a file
    (the python reader's records are not made), with the python engine's cards, rejections and
    summary; every message names ``<stdin>``, also in a run that reads its input twice (the account
    pass of every installed pack, ``--dedupe``), where the copy's temporary path used to show."""
    samples = (SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines()
    jsonl = "\n".join([*samples[:5], '{"id": "L-bad", "email": ', samples[1], *samples[5:]]) + "\n"
    table = (SAMPLES / "leads.csv").read_text(encoding="utf-8")
    rows = table.splitlines()
    csv_text = "\n".join([*rows[:4], "L-short,a@b.io", rows[2], *rows[4:]]) + "\n"

    from tests.test_columnar_table import _score

    def score(engine: str, body: str, *extra: str) -> tuple[int, str, str, str]:
        return _score(tmp_path, engine, "-", *extra, stdin=body.encode())

    for body, fmt in ((jsonl, ()), (csv_text, ("--input-format", "csv"))):
        for packs in (("-r", "firr-base"), ()):
            for extra in ((), ("--dedupe",), ("--explain",)):
                python = score("python", body, *fmt, *packs, *extra)
                assert python[0] == 1 and python[1] and "leadscore-" not in python[2]
                assert '"where":"<stdin>:' in python[2] and ("--dedupe" in extra or "earlier row of <stdin>" in python[2])
                with monkeypatch.context() as patched:
                    records_refused(patched)
                    assert score("duckdb", body, *fmt, *packs, *extra) == python
    # explain reads standard input twice with the account pass: its rejection names <stdin> too.
    odd = "\n".join([*samples[:2], '{"id": "L-odd", "activities": "nope"}']) + "\n"
    explained = CliRunner().invoke(build_cli(PluginManager()), ["explain", "-", "--lead", "L-odd", "--as-of", "2026-11-23"],
                                   input=odd.encode())
    assert explained.exit_code == 1 and explained.stderr.startswith("leadscore: lead L-odd was rejected at <stdin>:3: ")


def test_records_read_ahead_in_order_in_a_thread_and_an_error_where_it_came() -> None:
    """The leads the python reader makes for the columnar engine (CSV, Parquet, ...) come in their
    order, the chunk after the one being scored read in a thread of its own; an error reading
    stops the stream where the chunk it broke would have come."""
    import threading

    from leadscore.columnar.scan import read_ahead

    assert list(read_ahead(iter(range(10)), chunk=3)) == list(range(10))
    threads: list[str] = []

    def made() -> Iterator[int]:
        for n in range(6):
            threads.append(threading.current_thread().name)
            yield n

    assert list(read_ahead(made(), chunk=2)) == list(range(6))
    assert threads[0] == threading.current_thread().name  # the first chunk is read when asked for
    assert all(name.startswith("leadscore-read") for name in threads[2:])

    def broken() -> Iterator[int]:
        yield from range(5)
        raise ValueError("row 6: not a readable row")

    got: list[int] = []
    with pytest.raises(ValueError, match="row 6"):
        for n in read_ahead(broken(), chunk=2):
            got.append(n)
    assert got == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["leads.jsonl", "segment-leads.jsonl"])
def test_next_steps_are_each_cards_own_lead_on_the_columnar_engine(tmp_path: Path, name: str) -> None:
    """``--next-steps --engine duckdb``: the columnar engine reads a batch of leads before it gives
    the first card, and each card's next steps are still those of its own lead (not of the last
    lead read)."""
    python = _score(tmp_path, SAMPLES / name, "python", "--next-steps")
    assert python[0] == 0 and python[1].count('"next_steps":') == python[1].count("\n") >= 5
    assert _score(tmp_path, SAMPLES / name, "duckdb", "--next-steps") == python


# --- a third-party extractor: with a columnar form (the docs/hooks.md example), and without -----

class _PhonePlugin:
    """The docs/hooks.md example, with or without its columnar form."""

    def __init__(self, columnar: bool) -> None:
        self.columnar = columnar

    @staticmethod
    def has_phone(lead: Lead, ctx: ExtractContext) -> Any:
        from leadscore.model import Signal

        phone = lead.fields.get("phone")
        yield Signal("crm.has_phone", isinstance(phone, str) and phone != "", None, "")

    @staticmethod
    def has_phone_columnar(ctx: Any) -> Any:
        from leadscore.columnar.api import emit

        if "crm.has_phone" not in ctx.wanted:
            return None
        phone = q.call("json_extract_string", q.col("fields"), q.lit("$.phone"))
        value = q.coalesce(q.and_(q.not_null(phone), phone.neq(q.lit(""))), q.lit(False))
        return q.select(q.col("k"), *emit("crm.has_phone", value, None, q.lit(""))).from_(q.table(ctx.leads))

    def leadscore_signal_extractors(self) -> Any:
        from leadscore.model import SignalExtractor, SignalSpec

        return [SignalExtractor("acme-crm", self.has_phone, (SignalSpec("crm.has_phone", "bool"),),
                                columnar=self.has_phone_columnar if self.columnar else None)]


PHONE_PACK = """
[pack]
name = "phone"
version = "1"
extends = ["firr-base"]
priority = 5

[[rules]]
id = "fit.phone"
category = "fit"
points = 7
reason = "Gave a phone number"
when = { signal = "crm.has_phone", eq = true }
"""


@pytest.mark.parametrize("columnar", [True, False])
def test_a_third_party_extractor_works_with_and_without_a_columnar_form(tmp_path: Path, columnar: bool) -> None:
    from leadscore.hookspecs import hookimpl
    from leadscore.io import card_to_dict

    import types

    made = _PhonePlugin(columnar)

    @hookimpl
    def leadscore_signal_extractors() -> Any:
        return made.leadscore_signal_extractors()

    plugin = types.SimpleNamespace(leadscore_signal_extractors=leadscore_signal_extractors)
    pack = tmp_path / "phone.toml"
    pack.write_text(PHONE_PACK, encoding="utf-8")
    batch = [Lead(f"P-{i}", email="dana@acme.io", fields={"phone": phone} if phone is not None else {})
             for i, phone in enumerate(("+1 555 0100", "", None, "n/a"))]

    def run(backend: str) -> tuple[list[dict], Any]:
        pm = PluginManager(entry_points=False)
        pm.register(plugin, "acme-crm")
        with Engine(plugins=pm, rulepacks=[pack], backend=backend, as_of=AS_OF) as engine:
            cards = [card_to_dict(c, explain=True) for c in engine.score(batch)]
            return cards, engine.columnar_scorer(AS_OF) if backend == "duckdb" else None, pm.per_lead_only("acme-crm")

    want, _, _ = run("python")
    got, scorer, per_lead = run("duckdb")
    assert got == want
    assert any(line["rule_id"] == "fit.phone" for line in want[0]["ledger"])
    # Without a columnar form the run is scored the python way, and `leadscore plugins` says so.
    assert (scorer is not None) == columnar
    assert per_lead == (() if columnar else ("leadscore_signal_extractors",))


# --- the block decoder takes a line only as the python reader does ---------------------------------

_line_stamp = st.sampled_from(("2026-11-20T10:00:00Z", "2026-11-20T10:00:00.5Z", "2026-11-21T09:00:00.250000Z",
                          "2026-11-19T23:59:59Z", "2026-11-20T10:00:00+02:00", "2026-11-20", "2026-02-30T10:00:00Z",
                          "1066-10-14T09:00:00Z", "2026-11-20T10:00:00.1234567Z", " 2026-11-20T10:00:00Z", "soon",
                          "2026-11-20T24:00:00Z", "2026-11-20T10:60:00Z"))
_line_text = st.sampled_from(("Acme", " Acme ", "", "VP Sales", "Élise", "x\u2028", "\u00a0pad"))
_line_value = st.one_of(_line_text, st.booleans(), st.none(), st.integers(-10, 10), st.sampled_from((2**53, 2**53 + 1, 2**70)),
                   st.sampled_from((0.5, 1e308, 12.0)))
_line_props = st.one_of(st.none(), st.just({}), st.dictionaries(
    st.sampled_from(("url", "asset", "title", "n", "deep")),
    st.one_of(_line_value, st.lists(_line_value, max_size=2), st.dictionaries(st.just("a"), _line_value, max_size=1)), max_size=3))
_line_dicts = st.fixed_dictionaries({"id": st.one_of(st.sampled_from(("L-1", " L-2 ", "", "L-3")), st.integers(0, 9))}, optional={
    "email": st.one_of(_line_text, st.sampled_from(("Dana@Acme.IO", "ÉLISE@acme.io")), st.integers(0, 1)),
    "title": _line_text, "source": _line_text, "first_name": _line_text, "account_id": st.one_of(_line_text, st.integers(0, 2**60)),
    "created_at": st.one_of(_line_stamp, st.none()),
    "company": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "name": _line_text, "domain": st.sampled_from(("Acme.IO", " acme.io ", "")),
        "employees": st.one_of(st.none(), st.integers(-1, 10**6), st.sampled_from((2**60, 2**70)), st.just(12.0)),
        "annual_revenue": st.one_of(st.none(), st.integers(0, 10**9), st.floats(0, 1e12), st.sampled_from(("250000", 2**70, 10**400)))})),
    "fields": st.dictionaries(st.sampled_from(("plan", "budget_confirmed", "score")), _line_value, max_size=2),
    "activities": st.one_of(st.none(), st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(("page_view", "demo_request", "page_view ", "")), "at": _line_stamp},
        optional={"properties": _line_props, "id": st.sampled_from((None, "ev-1", " ev-2", ""))}), max_size=6)),
    "colour": st.just("red"),
})


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line_dicts, min_size=1, max_size=6), st.booleans())
def test_the_block_decoder_takes_lines_as_the_python_reader_does(dicts: list[dict], compact: bool) -> None:
    if _decoder_agrees(dicts, compact):
        event("a line taken by the decoder")


# (time of a second activity, whether the SQL reads the lead: times Python refuses are left to the
# python reader, which leaves the activity out; so are times written with fractions beside ones without).
@pytest.mark.parametrize(("stamp", "taken"), [
    ("2026-11-20T08:00:00Z", True), ("2026-11-20T24:00:00Z", False), ("2026-11-20T23:60:00Z", False),
    ("2026-11-20T23:59:60Z", False), ("2026-02-29T10:00:00Z", False), ("2026-11-20T08:59:59.999999Z", False)])
def test_activity_times_at_the_edges_are_read_as_the_python_reader_reads_them(stamp: str, taken: bool) -> None:
    acts = [{"type": "page_view", "at": "2026-11-20T09:00:00Z"}, {"type": "demo_request", "at": stamp, "properties": {"url": "/x"}}]
    assert _decoder_agrees([{"id": "L-1", "activities": acts}], True) == taken


_near_stamps = st.one_of(
    st.from_regex(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,7})?Z{0,2}", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z", fullmatch=True),
    st.sampled_from(("2026-11-20T10:00:00Z", "2024-02-29T23:59:59.999999Z", "2026-11-20T10:00:00+00:00", "")),
    st.text(max_size=24))


@settings(max_examples=400, deadline=None)
@given(st.lists(_near_stamps, min_size=1, max_size=40))
def test_the_activity_rows_read_a_time_exactly_when_the_python_reader_reads_it_so(stamps: list[str]) -> None:
    """``at`` is the reader's time in microseconds for every text of the form the SQL reads, and NULL
    for every other (the lead then goes to the python reader); DuckDB's cast reads the closing Z itself."""
    import duckdb
    import pyarrow as pa

    from leadscore.columnar.engine import WHOLE
    from leadscore.columnar.lines import STAMP, activity_sql
    from leadscore.errors import InputError
    from leadscore.io.timestamps import parse_timestamp

    as_of_us = q.micros(AS_OF)
    con = duckdb.connect()
    n = len(stamps)
    con.register("in_acts", pa.table({"k": list(range(n)), "pos": [0] * n, "type": ["page_view"] * n, "at": stamps,
                                      "props": pa.nulls(n, pa.string()), "where": pa.nulls(n, pa.string())}))
    got = dict(con.execute(f'SELECT k, "at" FROM ({activity_sql(as_of_us, "in_acts", evidence=False)})').fetchall())
    for k, text in enumerate(stamps):
        want = None
        if re.fullmatch(STAMP, text):
            try:
                us = q.micros(parse_timestamp(text, "x", "at"))
            except InputError:
                us = None
            want = us if us is not None and abs(as_of_us - us) < WHOLE else None
        assert got[k] == want, (text, got[k], want)


def test_a_lead_with_a_time_the_sql_does_not_read_is_scored_and_counted_once(tmp_path: Path) -> None:
    """A lead with an activity time the SQL does not read (24:00, which the python reader leaves out
    with a note), written as long as its other times so that the decoder takes the line, is read by
    the python reader instead: none of its activities stay in the block's table, so its activities
    of a type no pack knows are counted once, as the python engine counts them."""
    source = tmp_path / "times.jsonl"
    leads = [{"id": "T-1", "email": "ana@acme.io", "activities": [
                 {"type": "demo_request", "at": "2026-11-20T24:00:00Z"},
                 {"type": "mystery_ping", "at": "2026-11-20T09:00:00Z"}]},
             {"id": "T-2", "email": "bo@acme.io", "activities": [
                 {"type": "mystery_ping", "at": "2026-11-19T09:00:00Z"},
                 {"type": "demo_request", "at": "2026-11-21T09:00:00Z"}]}]
    source.write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    results = {}
    for engine in ("python", "duckdb"):
        result = CliRunner().invoke(build_cli(PluginManager()), [
            "score", str(source), "--as-of", "2026-11-23", "-r", "firr-base", "--engine", engine, "--explain"])
        results[engine] = (result.exit_code, result.stdout, result.stderr)
    assert results["duckdb"] == results["python"]
    assert "mystery_ping (2" in results["python"][2]


# Per-activity rules: (id, types, points, counting, decay); two decays are the same half-life by two names.
DECAY_RULES = (
    ("view.fast", ["page_view"], 10, {}, "fast"),
    ("view.flat", ["page_view", "pricing_page_visit"], -3, {"count": "each", "max_count": 2}, None),
    ("view.steps", ["page_view"], 7, {"count": "once"}, "steps"),
    ("view.recent", ["page_view", "pricing_page_visit"], -5, {"count": "daily", "max_count": 2}, "recent"),
    ("pricing.fast", ["pricing_page_visit"], 13, {"count": "each", "max_count": 3}, "fast_again"),
)
DECAY_PACK = {
    "pack": {"name": "decays", "version": "1"},
    "categories": {"intent": {}},
    "decay": {"fast": {"kind": "half_life", "half_life_days": 10},
              "steps": {"kind": "step", "steps": [[20, 0.5], [60, 0.25], [120, 0.0]]},
              "recent": {"kind": "window", "days": 30},
              "fast_again": {"kind": "half_life", "half_life_days": 10}},
    "rules": [{"id": rule_id, "reason": f"rule {rule_id}", "category": "intent", "on": on, "points": points, **counting,
               **({"decay": decay} if decay else {})} for rule_id, on, points, counting, decay in DECAY_RULES],
    "bands": [{"name": "low", "min": -1000}, {"name": "high", "min": 20}],
}


def test_per_activity_rules_read_their_decay_and_counting_as_data(tmp_path: Path) -> None:
    """Per-activity rules whose decay, counting limit and daily counting come from the rule table:
    four decays of three kinds (two of them the same half-life under two names), negative points,
    ``once``, ``max_count`` and ``daily``, on activities from hours to seven months old, score as the
    python engine scores them; the plan writes each distinct decay factor once."""
    import tomli_w

    pack = tmp_path / "decays.toml"
    pack.write_text(tomli_w.dumps(DECAY_PACK), encoding="utf-8")
    ages = (0.4, 1, 1.2, 9, 15, 19.5, 21, 29, 31, 45, 61, 90, 119, 121, 150)
    leads = [{"id": f"D-{n}", "email": f"p{n}@acme.io", "activities": [
        {"type": ("page_view", "pricing_page_visit")[(n + i) % 2],
         "at": (AS_OF - timedelta(days=age + n % 8 * 11)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for i, age in enumerate(ages) if (n >> i % 4) & 1 or i % 5 == n % 5]} for n in range(16)]
    source = tmp_path / "decays.jsonl"
    source.write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    for extra in (("--explain",), ()):
        python = _score(tmp_path, source, "python", "-r", str(pack), *extra)
        assert python[0] == 0 and python[1].count("\n") == 16
        assert _score(tmp_path, source, "duckdb", "-r", str(pack), *extra) == python
    with Engine(plugins=PluginManager(), rulepacks=[pack], backend="duckdb", as_of=AS_OF) as engine:
        ids, factors = engine.columnar_scorer(AS_OF, explain=False).plan.activity_decays()
        assert len(factors) == 3 and ids[(0, 0)] == ids[(0, 4)] != ids[(0, 2)] != ids[(0, 3)] != ids[(0, 0)]
        assert (0, 1) not in ids


def test_rule_caps_and_counted_matches_with_and_without_the_ledger(tmp_path: Path) -> None:
    """Rule caps (max_points, min_points), a category cap and the counting limits score as the
    python engine scores them with the full ledger and without it, as JSON and as CSV. Without the
    ledger the query makes neither the frequency-cap lines nor the count they read (the ledger alone
    shows them), and a run without rule caps makes no rule-cap step."""
    import tomli_w

    from leadscore.columnar.cards import statements

    capped = {**DECAY_PACK, "categories": {"intent": {"max": 40}}, "rules": [
        {**rule, **({"max_points": 15} if rule["id"] == "pricing.fast" else {}),
         **({"min_points": -4} if rule["id"] == "view.flat" else {})} for rule in DECAY_PACK["rules"]]}
    pack = tmp_path / "capped.toml"
    pack.write_text(tomli_w.dumps(capped), encoding="utf-8")
    ages = (0.5, 2, 3, 8, 12, 25, 33, 70)
    leads = [{"id": f"C-{n}", "email": f"c{n}@acme.io", "activities": [
        {"type": ("page_view", "pricing_page_visit")[(n + i) % 3 == 0], "at": (AS_OF - timedelta(days=age)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")} for i, age in enumerate(ages) if (n >> i % 3) & 1 or i % 4 == n % 4]} for n in range(12)]
    source = tmp_path / "capped.jsonl"
    source.write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    for extra in (("--explain",), (), ("--format=csv",), ("--format=csv", "--explain")):
        python = _score(tmp_path, source, "python", "-r", str(pack), *extra)
        assert python[0] == 0 and python[1]
        assert _score(tmp_path, source, "duckdb", "-r", str(pack), *extra) == python
    explained = _score(tmp_path, source, "python", "-r", str(pack), "--explain")[1]
    assert "rule capped at 15" in explained and "rule floored at -4" in explained and "not counted" in explained
    for rulepack, caps in ((pack, True), ("firr-base", False)):
        with Engine(plugins=PluginManager(), rulepacks=[rulepack], backend="duckdb", as_of=AS_OF) as engine:
            for explain in (True, False):
                scorer = engine.columnar_scorer(AS_OF, explain=explain)
                names = [name for name, _ in statements(scorer.plan, 3, explain)]
                assert ("rule_caps" in names) is caps
                query = scorer.variants[False]["query"] + " ".join(text for _, text, _ in scorer.variants[False]["steps"])
                assert ("frequency_cap" in query) is explain and ("COUNT(*) OVER" in query) is explain


# Lead-level rules (id, condition, points, decay): the first two make the same line, and so does the
# segment pack's "fit.business-segment" (the same condition and points, another id and position).
BUSINESS = {"signal": "email.type", "eq": "business"}
SENIOR = {"signal": "title.seniority", "in": ["vp", "c_level"]}
ALIKE_RULES = (
    ("fit.business", BUSINESS, 10, None),
    ("fit.senior", SENIOR, 15, None),
    ("fit.business-again", BUSINESS, 10, None),
    ("intent.pricing", {"signal": "activity.pricing_page_visit.count_30d", "gte": 1}, 20, "web"),
    ("fit.personal", {"signal": "email.type", "eq": "personal"}, -10, None),
)
SEGMENT_RULES = (
    ("fit.big", {"signal": "company.employees", "gte": 5000}, 5, None),
    ("fit.senior", SENIOR, 25, None),  # replaces the base rule
    ("fit.business-segment", BUSINESS, 10, None),
)


def _lead_rule_pack(name: str, rules: tuple[tuple[str, Any, int, str | None], ...], **pack: Any) -> dict[str, Any]:
    return {"pack": {"name": name, "version": "1", **pack}, "categories": {"fit": {}, "intent": {}},
            "decay": {"web": {"kind": "half_life", "half_life_days": 10 if name == "alike" else 4}},
            "rules": [{"id": rule_id, "reason": f"{name} rule {rule_id}", "category": rule_id.split(".")[0],
                       "when": when, "points": points, **({"decay": decay} if decay else {})}
                      for rule_id, when, points, decay in rules],
            "bands": [{"name": "low", "min": -1000}, {"name": "high", "min": 20, "requires": BUSINESS},
                      *([{"name": "top", "min": 35, "requires": SENIOR}] if name == "segment" else [])]}


def test_numbering_gives_equal_keys_one_number_in_the_order_first_met() -> None:
    """The plan's "write it once" numbering: a key met again gets its number back and keeps the
    first thing met with it; numbers count from ``start`` in the order keys are first met."""
    from leadscore.columnar.plan import Numbering

    gates = Numbering(start=2)
    assert [gates.number(key, thing) for key, thing in
            (("a", "first a"), ("b", "first b"), ("a", "second a"), ("c", "first c"), ("b", "second b"))] == [2, 3, 2, 4, 3]
    assert gates.firsts == ["first a", "first b", "first c"]
    assert Numbering().number(("x", 1), "x") == 0


def test_lead_rules_alike_make_one_line_for_every_combination_that_has_them(tmp_path: Path) -> None:
    """Lead-level rules are compiled once per distinct line (condition, points, signals, decay) and
    placed in each pack combination by a table: two rules alike in one pack, a third alike at
    another position of the segment's combination, a rule the segment replaces with other points,
    and a decay the segment redefines each score as the python engine scores them; so do band
    gates, each written once for the bands of both combinations that share it."""
    import tomli_w

    from leadscore.columnar.cards import gate_ids

    packs = []
    for name, rules, extra in (("alike", ALIKE_RULES, {}),
                               ("segment", SEGMENT_RULES, {"priority": 20, "extends": ["alike"], "applies_when":
                                                           {"signal": "company.employees", "gte": 1000}})):
        packs.append(tmp_path / f"{name}.toml")
        packs[-1].write_text(tomli_w.dumps(_lead_rule_pack(name, rules, **extra)), encoding="utf-8")
    leads = [{"id": f"A-{n}", "email": f"p{n}@" + ("gmail.com" if n % 3 == 0 else "acme.io"),
              "title": ("VP Marketing", "Engineer", "Chief Revenue Officer")[n % 3],
              "company": {"name": "Acme", "employees": (50, 1200, 8000)[n // 3 % 3]},
              "activities": [{"type": "pricing_page_visit",
                              "at": (AS_OF - timedelta(days=1 + n * 3)).strftime("%Y-%m-%dT%H:%M:%SZ")}] * (n % 2)}
             for n in range(18)]
    source = tmp_path / "alike.jsonl"
    source.write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    packs_args = [arg for pack in packs for arg in ("-r", str(pack))]
    for extra in (("--explain",), ()):
        python = _score(tmp_path, source, "python", *packs_args, *extra)
        assert python[0] == 0 and python[1].count("\n") == 18
        assert "alike rule fit.business-again" in python[1] and "segment rule fit.business-segment" in python[1]
        assert {'"band":"high"', '"band":"top"', '"points_band":"high"', '"points_band":"top"'} <= \
            {part for part in python[1].split(",") if "band" in part}
        assert _score(tmp_path, source, "duckdb", *packs_args, *extra) == python
    with Engine(plugins=PluginManager(), rulepacks=packs, backend="duckdb", as_of=AS_OF) as engine:
        plan = engine.columnar_scorer(AS_OF, explain=False).plan
        ids, firsts = plan.lead_rule_ids()
        position = {(combo.index, rule.id): index for combo in plan.combos for index, rule in enumerate(combo.composed.rules)}
        alone, both = sorted(combo.index for combo in plan.combos)
        lid = {(c, rule_id): ids[(c, position[(c, rule_id)])] for c, rule_id in position}
        assert lid[(alone, "fit.business")] == lid[(alone, "fit.business-again")] == lid[(both, "fit.business-segment")] \
            == lid[(both, "fit.business")]
        assert position[(both, "fit.business-segment")] != position[(both, "fit.business")]
        assert lid[(alone, "fit.senior")] != lid[(both, "fit.senior")]  # other points
        assert lid[(alone, "intent.pricing")] != lid[(both, "intent.pricing")]  # the segment's own decay "web"
        assert len(firsts) == 7
        assert firsts[lid[(alone, "fit.business")]][2] == (alone, both) and firsts[lid[(alone, "fit.senior")]][2] == (alone,)
        gates, conditions = gate_ids(plan)
        assert len(conditions) == 2 and gates[(alone, 1)] == gates[(both, 1)] != gates[(both, 2)] != gates[(alone, 0)] == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b), max_size=12), st.booleans(),
       st.integers(1, 40))
def test_line_blocks_are_the_file_split_into_lines(tmp_path: Path, lines: list[bytes], final_end: bool,
                                                   block_bytes: int) -> None:
    """Read block by block, the file's lines are its lines split at each line end, numbered from 1;
    each block's span in the file reads its lines again."""
    from leadscore.columnar.scan import SpanLines, line_blocks

    content = b"\n".join(lines) + (b"\n" if final_end and lines else b"")
    path = tmp_path / "lines.jsonl"
    path.write_bytes(content)
    got: list[bytes] = []
    spans: list[tuple[int, int, int, int]] = []
    for first, block in line_blocks(str(path), block_bytes, spans):
        assert first == len(got) + 1 and block
        assert SpanLines(str(path), *spans[-1][1:]).read() == block  # its span reads the same lines again
        got.extend(block)
    want = content.split(b"\n")
    if want[-1] == b"":
        want.pop()
    assert got == want
    assert [first for first, *_ in spans] == [first for first, _ in line_blocks(str(path), block_bytes)]


def test_a_block_decoded_in_chunks_is_the_block_decoded_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """decode_block turns its Python lists into Arrow every CHUNK_LINES lines: the rows and the odd
    lines are the same whatever the chunk, with odd lines on either side of a chunk's edge."""
    from leadscore.columnar import lines as decoder

    block = [line.encode() for line in (*GOOD, *BAD_LINES, *GOOD[:9], "", *BAD_LINES[:3])]
    as_of_us = q.micros(AS_OF)
    whole = decoder.decode_block(block, 5, as_of_us, {"score": "number"}, True)
    assert whole.odd and whole.leads.num_rows > 40
    for chunk in (1, 7, 64):
        monkeypatch.setattr(decoder, "CHUNK_LINES", chunk)
        parts = decoder.decode_block(block, 5, as_of_us, {"score": "number"}, True)
        assert parts.odd == whole.odd
        assert parts.leads.equals(whole.leads) and parts.activities.equals(whole.activities)


@pytest.mark.parametrize(("packs", "in_memory"), [((), None), (("-r", "firr-base"), None), (("-r", "firr-base"), 3)])
def test_duplicate_ids_within_and_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                packs: tuple[str, ...], in_memory: int | None) -> None:
    """A lead id met before, in the same block or one read long before, is rejected in its place as
    the python reader rejects it; a new id is scored. Either way the scan finds them: every pack (the
    account pass finds the duplicates at its end, LeadIds) and firr-base alone (one pass: each block
    checked against the hashes met before, SeenIds: in DuckDB's memory, or with ``in_memory`` 3 most
    of them in the files written every few leads)."""
    import leadscore.columnar.scan as scan

    lines = GOOD[:30]
    copies = [lines[3], lines[0], lines[29]]  # met two blocks back, at the very start, just before
    source = tmp_path / "copies.jsonl"
    source.write_text("\n".join([*lines, *copies, lines[10], *GOOD[30:36]]) + "\n", encoding="utf-8")
    monkeypatch.setattr(scan, "EXPLAIN_BLOCK_BYTES", 4_000)  # a few leads a block
    written: list[int] = []
    if in_memory is not None:
        monkeypatch.setattr(scan, "SEEN_IDS_IN_MEMORY", in_memory)
        write = scan.ParquetFolder.write
        monkeypatch.setattr(scan.ParquetFolder, "write",
                            lambda self, *args: (written.append(self.files), write(self, *args))[1])
    python = _score(tmp_path, source, "python", "--explain", *packs)
    duckdb = _score(tmp_path, source, "duckdb", "--explain", *packs)
    assert duckdb == python
    assert python[2].count("duplicate lead id") == 4 and python[3].startswith("scored 36 + rejected 4")
    if in_memory is not None:
        assert len(written) >= 5  # a file a block of a few leads (three or more hashes each)


def test_a_lead_id_file_that_cannot_be_written_stops_the_run_with_one_line(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """When the disk under TMPDIR is full as a one-pass scan writes the ids met to a file (SeenIds),
    the run stops with one line naming the input, the folder and the fix; no cards file is left."""
    import leadscore.columnar.files as files
    import leadscore.columnar.scan as scan

    source = tmp_path / "leads.jsonl"
    source.write_text("\n".join(GOOD[:30]) + "\n", encoding="utf-8")
    monkeypatch.setattr(scan, "EXPLAIN_BLOCK_BYTES", 4_000)
    monkeypatch.setattr(scan, "SEEN_IDS_IN_MEMORY", 3)

    def full(con: object, source: str, path: Path, row_group: int | None = None) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "copy_parquet", full)
    code, out, _, summary = _score(tmp_path, source, "duckdb", "--explain", "-r", "firr-base")
    assert code != 0 and out == ""
    assert summary.startswith(f"leadscore: {source}: the columnar engine could not write the lead ids it checks "
                              "for duplicates to "), summary
    assert "No space left on device" in summary and "free space there" in summary


def _decoder_agrees(dicts: list[dict], compact: bool) -> int:
    """Every line the decoder (and the SQL's time check) takes gives the rows the python reader's
    lead gives through Rows; the others go to the python reader. Returns how many it took."""
    import duckdb

    from leadscore.columnar.lines import activity_sql, decode_block
    from leadscore.io.readers import parse_jsonl_line

    separators = (",", ":") if compact else (", ", ": ")
    lines = [json.dumps(d, separators=separators, ensure_ascii=compact).encode() for d in dicts]
    as_of_us = q.micros(AS_OF)
    decoded = decode_block(lines, 1, as_of_us, {"score": "number"}, True)
    con = duckdb.connect()
    con.register("in_acts", decoded.activities)
    acts = con.execute(f"SELECT * FROM ({activity_sql(as_of_us, 'in_acts')}) ORDER BY k, pos").fetchall()
    bad = {row[0] for row in acts if row[3] is None}  # a time the SQL does not read as the reader does
    taken = {row["k"]: tuple(row.values()) for row in decoded.leads.to_pylist()}
    assert set(taken) | set(decoded.odd) == set(range(1, len(lines) + 1))
    for k, line in enumerate(lines, 1):
        if k not in taken or k in bad:
            continue
        lead = parse_jsonl_line(line + b"\n", f"x:{k}")
        assert isinstance(lead, Lead), (line, lead)
        rows = Rows({"score": "number"})
        rows.add(k, lead, as_of_us)
        want_lead, want_acts = rows.tables()
        want = tuple(want_lead.to_pylist()[0].values())
        got = taken[k]
        assert got[:-1] == want[:-1]
        assert (json.loads(got[-1]) if got[-1] else None) == (json.loads(want[-1]) if want[-1] else None)
        mine = [(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None, r[5]) for r in acts if r[0] == k]
        theirs = [(r["k"], r["pos"], r["type"], r["at"], json.loads(r["props"]) if r["props"] else None, r["ev"])
                  for r in want_acts.to_pylist()]
        assert mine == sorted(theirs, key=lambda r: r[1])
    return len(set(taken) - bad)


def test_the_evidence_place_is_read_only_for_the_full_ledger(tmp_path: Path) -> None:
    """Without ``--explain`` the decoder leaves the evidence's place (and, when no rule reads them,
    the properties) unread, so an activity whose url is not text no longer sends its lead the
    python way; the cards are the python engine's either way."""
    from leadscore.columnar.lines import decode_block

    leads = [{"id": "P-1", "email": "ann@acme.io", "activities": [
                 {"type": "pricing_page_visit", "at": "2026-11-20T10:00:00Z", "properties": {"url": "/pricing"}},
                 {"type": "demo_request", "at": "2026-11-21T10:00:00Z", "properties": {"url": 7, "asset": "x"}}]},
             {"id": "P-2", "email": "bo@acme.io", "activities": [
                 {"type": "page_view", "at": "2026-11-19T10:00:00Z", "properties": {"title": "Home"}}]}]
    lines = [json.dumps(lead).encode() for lead in leads]
    as_of_us = q.micros(AS_OF)
    ledger = decode_block(lines, 1, as_of_us, {}, with_props=False, with_places=True)
    assert ledger.odd == [1] and ledger.activities.column("where").to_pylist() == ["Home"]
    cards = decode_block(lines, 1, as_of_us, {}, with_props=False, with_places=False)
    assert cards.odd == [] and cards.activities.column("where").to_pylist() == [None, None, None]
    assert cards.activities.column("props").to_pylist() == [None, None, None]
    source = tmp_path / "places.jsonl"
    source.write_text(b"\n".join(lines).decode() + "\n", encoding="utf-8")
    for extra in ((), ("--explain",), ("--format=csv",)):
        python = _score(tmp_path, source, "python", "-r", "firr-base", *extra)
        assert python[0] == 0 and python[1]
        assert _score(tmp_path, source, "duckdb", "-r", "firr-base", *extra) == python


def test_field_values_that_misfit_their_declared_type_are_counted_alike(tmp_path: Path) -> None:
    # firr-base declares budget_confirmed and competitor as bool: "maybe" and 3 fit neither, "yes" does.
    source = tmp_path / "typed.jsonl"
    rows = [{"id": "T-1", "fields": {"budget_confirmed": "yes"}}, {"id": "T-2", "fields": {"budget_confirmed": "maybe"}},
            {"id": "T-3", "fields": {"budget_confirmed": "maybe", "competitor": 3}},
            {"id": "T-4", "fields": {"competitor": 2.5, "budget_confirmed": None}}]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    results = {}
    for engine in ("python", "duckdb"):
        result = CliRunner().invoke(build_cli(PluginManager()), [
            "score", str(source), "--as-of", "2026-11-23", "-r", "firr-base", "--engine", engine, "--explain",
            "--format", "jsonl"])
        results[engine] = (result.exit_code, result.stdout, result.stderr)
    assert results["duckdb"] == results["python"]
    assert results["python"][2].splitlines()[-2] == (
        "leadscore: warning: custom field values that do not fit their declared type, scored nothing: "
        "fields.budget_confirmed (2 not a bool); fields.competitor (2 not a bool); fix the values or the type in the "
        "pack's [fields] (docs/rulepacks.md, \"Custom fields\")")
    # The columnar engine read this file itself: declared fields no longer send it the python way.
    with Engine(plugins=PluginManager(), rulepacks=["firr-base"], backend="duckdb", as_of=AS_OF) as engine:
        assert scan_jsonl(engine, str(source), str(source), AS_OF, explain=False, top=3) is not None


def test_a_batch_that_fails_in_sql_is_scored_alike_and_said_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch DuckDB cannot run goes to the python engine (same cards) and the run says so in one line."""
    from leadscore.columnar.engine import ColumnarScorer

    source = SAMPLES / "leads.csv"
    extra = ("--activities", str(SAMPLES / "activities.csv"), "-r", "firr-base")
    python = _score(tmp_path, source, "python", *extra)
    calls = []

    run = ColumnarScorer.run_views

    def failing(self: Any, **kwargs: Any) -> Any:
        if not self.con.execute("SELECT count(*) FROM b_leads").fetchall()[0][0]:  # the check when the plan is compiled
            return run(self, **kwargs)
        calls.append(1)
        raise RuntimeError("Out of Memory Error: could not allocate block of 262144 bytes\nsecond line")

    monkeypatch.setattr(ColumnarScorer, "run_views", failing)
    out = tmp_path / "fallback.jsonl"
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), *extra, "--as-of", "2026-11-23", "--engine", "duckdb", "-o", str(out)])
    assert calls and result.exit_code == 0
    assert out.read_text(encoding="utf-8") == python[1]
    notes = [line for line in result.stderr.splitlines() if line.startswith("leadscore: note: the columnar engine")]
    assert notes == ["leadscore: note: the columnar engine could not run 1 batch in SQL, so the python engine scored "
                     "those leads (same cards, slower); first error: RuntimeError: Out of Memory Error: could not "
                     "allocate block of 262144 bytes second line; LEADSCORE_COLUMNAR_STRICT=1 stops at it instead"]
    monkeypatch.undo()
    quiet = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), *extra, "--as-of", "2026-11-23", "--engine", "duckdb", "-o", str(out)])
    assert "columnar engine could not" not in quiet.stderr and out.read_text(encoding="utf-8") == python[1]



# Text where a CSV cell gets subtle: the writer's quoting characters, formula starts, other control
# characters and line ends, and text beyond ASCII.
_cell_text = st.text(st.sampled_from([*',"\n\r\t=+-@\' |;', "a", "Z", "0", "\x00", "\x1f", "\x7f", "\u00e9", "\u2028",
                                      "\U0001f600"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_cell_text)
def test_a_csv_cell_made_in_sql_is_the_python_writers(text: str) -> None:
    """The SQL of a CSV cell (formula guard, then quoting) gives what the python writer writes."""
    import csv
    import io

    import duckdb

    from leadscore.columnar.render import csv_cell
    from leadscore.io.writers import safe_cell

    written = io.StringIO()
    csv.writer(written, lineterminator="\n").writerow([safe_cell(text), "end"])
    con = duckdb.connect()
    made = con.execute(f"SELECT {q.sql(csv_cell(q.col('t')))} FROM (SELECT ? AS t)", [text]).fetchone()[0]
    assert made + ",end\n" == written.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.none() | _cell_text | st.text(st.sampled_from(['"', "\\", "a", "\x01", "\u00e9"]), max_size=6))
def test_a_json_string_made_in_sql_is_orjsons(text: str | None) -> None:
    """The SQL of a card's text as JSON gives orjson's text (the python writer's): quoted as it is
    when nothing in it is escaped, through to_json or orjson when something is; and the rulepacks'
    texts quoted without a check give the same when they are plain."""
    from types import SimpleNamespace

    import duckdb
    import orjson

    from leadscore.columnar.context import Udfs
    from leadscore.columnar.render import _plain, json_text, quoted

    plan = SimpleNamespace(udfs=Udfs())
    con = duckdb.connect()
    made = json_text(plan, q.col("t"))
    plan.udfs.register(con)
    expected = "null" if text is None else orjson.dumps(text).decode()
    assert con.execute(f"SELECT {q.sql(made)} FROM (SELECT CAST(? AS VARCHAR) AS t)", [text]).fetchone()[0] == expected
    if _plain([text]):
        plain = quoted(plan, q.col("t"), True)
        assert con.execute(f"SELECT {q.sql(plain)} FROM (SELECT CAST(? AS VARCHAR) AS t)", [text]).fetchone()[0] == expected


# A pack whose texts JSON escapes: a category name, reasons and a gate's reason with quotes, a
# backslash, a control character and text beyond ASCII (band names are plain by the loader's rule).
ODD_TEXT_PACK = {
    "pack": {"name": "odd-texts", "version": "1"},
    "categories": {'fit "a"': {}, "intent": {}},
    "rules": [
        {"id": "odd.business", "category": 'fit "a"', "points": 20, "reason": 'a "business" email \\ domain',
         "when": {"signal": "email.type", "eq": "business"}},
        {"id": "odd.senior", "category": 'fit "a"', "points": 15, "reason": "senior\u0001 r\u00f4le",
         "when": {"signal": "title.seniority", "in": ["vp", "c_level", "director"]}},
        {"id": "odd.pricing", "category": "intent", "points": 25, "reason": "pricing \"page\"", "on": "pricing_page_visit"},
    ],
    "bands": [{"name": "low", "min": -1000}, {"name": "high", "min": 30,
                                                "requires": {"signal": "title.seniority", "eq": "c_level"},
                                                "gate_reason": 'a "C-level" title'}],
}


def test_cards_with_texts_json_escapes_are_written_as_the_python_engine_writes_them(tmp_path: Path) -> None:
    """A card's texts from the rulepacks are quoted without a check only when every such text of the
    run is plain (firr-base's); a pack with quotes, a backslash or a control character in a category
    name, a reason or a gate's reason has those escaped, and the file is the python engine's."""
    import tomli_w

    from leadscore.columnar.render import PlainTexts

    pack = tmp_path / "odd.toml"
    pack.write_text(tomli_w.dumps(ODD_TEXT_PACK), encoding="utf-8")
    leads = [{"id": f"O-{n}", "email": f"o{n}@{('acme.io', 'gmail.com')[n % 2]}",
              "title": ("VP Sales", "CEO", "Analyst")[n % 3],
              "activities": [{"type": "pricing_page_visit", "at": "2026-11-20T10:00:00Z"}] if n % 4 else []}
             for n in range(12)]
    source = tmp_path / "odd.jsonl"
    source.write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    for extra in ((), ("--explain",)):
        python = _score(tmp_path, source, "python", "-r", str(pack), *extra)
        assert python[0] == 0 and '\\"business\\"' in python[1] and "\\u0001" in python[1]
        assert '"fit \\"a\\"":' in python[1] and 'requires a \\"C-level\\" title' in python[1]
        assert _score(tmp_path, source, "duckdb", "-r", str(pack), *extra) == python
    for packs, plain in (([pack], PlainTexts(bands=True, categories=False, reasons=False, notes=False)),
                         (["firr-base"], PlainTexts(bands=True, categories=True, reasons=True, notes=True))):
        with Engine(plugins=PluginManager(), rulepacks=packs, backend="duckdb", as_of=AS_OF) as engine:
            assert PlainTexts.of(engine.columnar_scorer(AS_OF, explain=False).plan) == plain


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "rule_id": _cell_text, "points": st.integers(-10**6, 10**6), "decay_factor": st.floats(-2, 2).map(lambda f: round(f, 4)),
    "observed_at": st.none() | _cell_text, "evidence": _cell_text}), max_size=4))
def test_the_csv_and_parquet_writers_json_of_a_ledger_is_the_json_lines_writers(ledger: list[dict]) -> None:
    """The CSV and Parquet writers write a ledger with json.dumps, the JSON Lines writer (and the SQL
    that makes its text) as orjson does: the same text for a ledger's values (texts, whole numbers,
    decay factors rounded to four places), so the columnar engine writes one for all three."""
    import orjson

    assert json.dumps(ledger, ensure_ascii=False, separators=(",", ":")) == orjson.dumps(ledger).decode()


@pytest.mark.parametrize(("source", "packs"), [("segment-leads.jsonl", ()), ("leads.jsonl", ("firr-base",)),
                                               ("leads.jsonl", ())])
def test_csv_rows_are_made_in_sql_as_the_python_writer_writes_them(tmp_path: Path, source: str,
                                                                   packs: tuple[str, ...]) -> None:
    """The columnar engine hands out each card as its CSV row made in SQL (routes of the plugins'
    routers too; with --explain its ledger), the rows the python engine's writer writes for the file."""
    from leadscore.columnar import Rendered

    for explain in (False, True):
        python = _score(tmp_path, SAMPLES / source, "python", "--format=csv", *(f"-r{p}" for p in packs),
                        *(("--explain",) if explain else ()))
        assert python[0] == 0
        with Engine(plugins=PluginManager(), rulepacks=list(packs) or None, backend="duckdb", as_of=AS_OF) as engine:
            out = list(scan_jsonl(engine, str(SAMPLES / source), source, AS_OF, explain=explain, top=3, render="csv"))
        assert out and all(isinstance(item, Rendered) for item in out)
        assert "".join(item.line for item in out) == python[1].split("\n", 1)[1]


@pytest.mark.parametrize(("source", "packs"), [("segment-leads.jsonl", ()), ("leads.jsonl", ("-r", "firr-base"))])
def test_parquet_rows_made_in_sql_give_the_python_writers_file(tmp_path: Path, source: str,
                                                                packs: tuple[str, ...]) -> None:
    """The columnar engine hands out each card as a row of a table made in SQL, and the Parquet file
    has the python engine's bytes (routes of the plugins' routers too; with --explain the ledger)."""
    from leadscore.columnar import RenderedRow

    def parquet(engine: str, *extra: str) -> bytes:
        out = tmp_path / f"{engine}.parquet"
        result = CliRunner().invoke(build_cli(PluginManager()), [
            "score", str(SAMPLES / source), "--as-of", "2026-11-23", "--engine", engine, "-o", str(out), *packs, *extra])
        assert result.exit_code == 0, result.output
        return out.read_bytes()

    for extra in ((), ("--explain",)):
        assert parquet("duckdb", *extra) == parquet("python", *extra)
    with Engine(plugins=PluginManager(), rulepacks=list(packs[1:]) or None, backend="duckdb", as_of=AS_OF) as engine:
        rows = list(scan_jsonl(engine, str(SAMPLES / source), source, AS_OF, explain=False, top=3, render="parquet"))
        explained = list(scan_jsonl(engine, str(SAMPLES / source), source, AS_OF, explain=True, top=3,
                                    render="parquet"))
    assert rows and all(isinstance(item, RenderedRow) for item in rows + explained)


def test_parquet_row_groups_across_blocks_and_python_scored_leads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row groups of rows made in SQL in several blocks, with leads the python engine scored (odd
    lines) and rejections between them: the python engine's file, byte for byte."""
    from leadscore.columnar import scan
    from leadscore.io import writers

    from leadscore.columnar import RenderedRow
    from leadscore.model import Rejection, ScoreCard

    # An integer past 2**53 in a custom field: the python engine scores that lead, between leads scored in SQL.
    by_python = ('{"id": "P-1", "email": "p@acme.io", "fields": {"ratio": 1152921504606846976}}',
                 '{"id": "Q-1", "email": "q@acme.io"}')
    source = _generated(tmp_path, 300, 11, *by_python, *ODD_AND_DUPLICATE)
    monkeypatch.setattr(scan, "BLOCK_BYTES", 60_000)
    monkeypatch.setattr(writers, "PARQUET_ROW_GROUP", 37)
    with Engine(plugins=PluginManager(), rulepacks=["firr-base"], backend="duckdb", as_of=AS_OF) as engine:
        kinds = [type(item) for item in scan_jsonl(engine, str(source), "generated.jsonl", AS_OF, explain=False, top=3,
                                                   render="parquet")]
    assert kinds[-4:] == [ScoreCard, RenderedRow, Rejection, RenderedRow] and kinds.count(ScoreCard) == 1
    made = {}
    for engine in ("python", "duckdb"):
        out = tmp_path / f"{engine}.parquet"
        result = CliRunner().invoke(build_cli(PluginManager()), [
            "score", str(source), "--as-of", "2026-11-23", "--engine", engine, "-o", str(out), "-r", "firr-base"])
        assert result.exit_code == 1 and "scored 303 + rejected 1 == read 304" in result.stderr
        made[engine] = out.read_bytes()
    assert made["duckdb"] == made["python"]
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "duckdb.parquet").metadata.num_row_groups == 9  # 303 rows, 37 a group


def test_a_blocks_parquet_rows_are_written_as_one_slice_of_its_table(tmp_path: Path) -> None:
    """The writer takes the rows made in SQL in the leads' order, a run of rows of one table at a time:
    each block's table comes in that order, so its rows make one run (in the query's order, here with
    every installed pack on two threads, about two rows a run). The same bytes as the python engine's file."""
    from leadscore.io import writers

    source = _generated(tmp_path, 6000, 5)
    runs: list[int] = []
    end_run = writers.ParquetWriter._end_run

    def counted(self: Any) -> None:
        if self._run is not None:
            runs.append(self._run[2] - self._run[1])
        end_run(self)

    made = {}
    for engine in ("python", "duckdb"):
        out = tmp_path / f"{engine}.parquet"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writers.ParquetWriter, "_end_run", counted)
            result = CliRunner().invoke(build_cli(PluginManager()), [
                "score", str(source), "--as-of", "2026-11-23", "--engine", engine, "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        made[engine] = out.read_bytes()
    assert made["duckdb"] == made["python"]
    assert runs == [6000]  # the python engine's cards make no run


def test_the_stored_signal_relation_keeps_only_the_columns_the_plan_reads() -> None:
    """The stored ``sig`` step keeps the columns a later statement names: without --explain no
    evidence text, and no signal that no rule, route or card of the run reads; with --explain the
    evidence the ledger shows. The account pass reads the whole relation's SQL."""
    with Engine(plugins=PluginManager(), rulepacks=["firr-base"], backend="duckdb", as_of=AS_OF) as engine:
        for explain in (False, True):
            scorer = engine.columnar_scorer(AS_OF, explain=explain, values=False, render="jsonl")
            named = lambda sql: [row[0] for row in scorer.con.execute(f"DESCRIBE {sql}").fetchall()]  # noqa: E731
            stored = named(scorer.variants[False]["steps"][0][1])
            whole = named(scorer.signal_statement(with_accounts=False))
            assert set(stored) < set(whole) and {"k", "combo", "gates", "title.seniority"} <= set(stored)
            assert "title.text" in whole and "title.text" not in stored  # no rule of firr-base reads it
            assert any(name.endswith("#ev") for name in stored) == explain


def test_the_signal_relation_is_kept_whole_when_a_statement_reads_all_of_it() -> None:
    import sqlglot

    from leadscore.columnar.engine import _read_columns

    sig = q.select(q.col("k"), q.col("a"), q.col("b")).from_("t")
    sig.meta["columns"] = ["k", "a", "b"]
    read = sqlglot.parse_one('SELECT s."a" FROM sig AS s', read="duckdb")
    assert q.sql(_read_columns(sig, [read])) == 'SELECT "k", "a" FROM (SELECT "k", "a", "b" FROM t) AS sig_all'
    for every in ('SELECT * FROM sig', 'SELECT s.* FROM sig AS s', 'SELECT s."a" FROM sig AS s JOIN u ON TRUE '
                  'WHERE EXISTS (SELECT * FROM sig)'):
        assert _read_columns(sig, [read, sqlglot.parse_one(every, read="duckdb")]) is sig
    sig.meta.clear()
    assert _read_columns(sig, [read]) is sig  # columns not known


@pytest.mark.parametrize(("explain", "packs", "fail"), [((), ("-r", "firr-base"), 2),
                                                         (("--explain",), ("-r", "firr-base"), 2),
                                                         ((), (), 2), ((), (), 8)])
def test_a_block_of_a_file_that_fails_in_sql_is_read_again_and_scored_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, explain: tuple[str, ...], packs: tuple[str, ...],
        fail: int) -> None:
    """JSON Lines read by the columnar engine in blocks: a block DuckDB cannot score (out of memory, say)
    is read again by the python reader and scored by the python engine, the rest in SQL; same bytes.
    With every installed pack the file is read twice (the account pass first): the ``fail``-th block
    with leads falls in the account pass (2, of 6 blocks) or in the scoring pass (8)."""
    from leadscore.columnar import scan
    from leadscore.columnar.accounts import AccountPass
    from leadscore.columnar.engine import ColumnarScorer

    source = _generated(tmp_path, 300, 5, *ODD_AND_DUPLICATE)
    python = _score(tmp_path, source, "python", *packs, *explain)
    monkeypatch.setattr(scan, "BLOCK_BYTES", 120_000)
    monkeypatch.setattr(scan, "EXPLAIN_BLOCK_BYTES", 120_000)
    scored_blocks: list[int] = []

    def failing(run: Any) -> Any:
        def run_or_fail(self: Any, **kwargs: Any) -> Any:
            con = self.con if isinstance(self, ColumnarScorer) else self.scorer.con
            if con.execute("SELECT count(*) FROM b_leads").fetchall()[0][0]:
                scored_blocks.append(1)
                if len(scored_blocks) == fail:
                    raise RuntimeError("Out of Memory Error: failed to allocate data of size 8.0 MiB")
            return run(self, **kwargs)
        return run_or_fail

    # The scoring pass's SQL, and the account pass's.
    monkeypatch.setattr(ColumnarScorer, "run_views", failing(ColumnarScorer.run_views))
    monkeypatch.setattr(AccountPass, "add_sql", failing(AccountPass.add_sql))
    out = tmp_path / "fallback.jsonl"
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), *packs, *explain, "--as-of", "2026-11-23", "--engine", "duckdb", "-o", str(out)])
    assert len(scored_blocks) >= fail + 1 and result.exit_code == python[0], result.output
    assert out.read_text(encoding="utf-8") == python[1]
    assert ("leadscore: note: the columnar engine could not run 1 batch in SQL, so the python engine scored those "
            "leads (same cards, slower); first error: RuntimeError: Out of Memory Error: failed to allocate data of "
            "size 8.0 MiB; LEADSCORE_COLUMNAR_STRICT=1 stops at it instead") in result.stderr.splitlines()


def _python_scored(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the leads the python engine scores from now on (in a columnar run: those the SQL
    did not), in order."""
    ids: list[str] = []
    score_item = Engine.score_item

    def counted(self: Any, item: Any, *args: Any) -> Any:
        ids.append(item.id)
        return score_item(self, item, *args)

    monkeypatch.setattr(Engine, "score_item", counted)
    return ids


@pytest.mark.parametrize(("explain", "packs"), [(("--explain",), ("-r", "firr-base")), ((), ()), (("--explain",), ())])
@pytest.mark.parametrize("most", [90, 0])
def test_a_part_of_a_block_out_of_duckdb_memory_is_halved_and_scored_in_sql(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, explain: tuple[str, ...], packs: tuple[str, ...],
        most: int) -> None:
    """DuckDB out of memory on a block (with every installed pack's ledger, say): the block is halved
    and each half scored in SQL, down to parts of MIN_PART_LINES lines; a part still out of memory
    at that size is scored by the python engine. Both passes (the account pass too), same bytes."""
    from leadscore.columnar import scan

    source = _generated(tmp_path, 600, 3, *ODD_AND_DUPLICATE)
    python = _score(tmp_path, source, "python", *packs, *explain)
    monkeypatch.setattr(scan, "MIN_PART_LINES", 40)
    by_python = _python_scored(monkeypatch)
    whole = _score(tmp_path, source, "duckdb", *packs, *explain)
    assert whole == python
    odd, by_python[:] = list(by_python), []
    sizes = _out_of_memory_past(monkeypatch, most)
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), *packs, *explain, "--as-of", "2026-11-23", "--engine", "duckdb",
        "-o", str(tmp_path / "halved.jsonl")])
    assert result.exit_code == python[0], result.output
    assert (tmp_path / "halved.jsonl").read_text(encoding="utf-8") == python[1]
    assert max(sizes) > 300 and min(sizes) <= most
    notes = [line for line in result.stderr.splitlines() if line.startswith("leadscore: note: the columnar")]
    if most:
        assert by_python == odd and notes == []  # every part in SQL
        assert max(s for s in sizes if s <= most) > 20
    else:
        assert len(by_python) > 600 - 10 and len(notes) == 1 and "first error: OutOfMemoryException" in notes[0]
        assert "; a memory limit above 200MB (--memory-limit) keeps them in SQL; " in notes[0]


def _out_of_memory_past(monkeypatch: pytest.MonkeyPatch, most: int) -> list[int]:
    """The scoring pass's SQL and the account pass's made to run out of DuckDB's memory on a part of
    more than ``most`` leads; returns the list each part's size is added to as it is tried."""
    import duckdb

    from leadscore.columnar.accounts import AccountPass
    from leadscore.columnar.engine import ColumnarScorer

    sizes: list[int] = []

    def out_of_memory(run: Any) -> Any:
        def run_or_fail(self: Any, **kwargs: Any) -> Any:
            con = self.con if isinstance(self, ColumnarScorer) else self.scorer.con
            sizes.append(con.execute("SELECT count(*) FROM b_leads").fetchall()[0][0])
            if sizes[-1] > most:
                raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 16.0 MiB")
            return run(self, **kwargs)
        return run_or_fail

    monkeypatch.setattr(ColumnarScorer, "run_views", out_of_memory(ColumnarScorer.run_views))
    monkeypatch.setattr(AccountPass, "add_sql", out_of_memory(AccountPass.add_sql))
    return sizes


def test_a_batch_after_one_halved_for_memory_starts_in_parts_of_the_halves_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a part ran out of DuckDB's memory and was halved, the next batches of that kind of
    statement start in parts no larger than the halving came to (not the whole batch, to fail again);
    another kind starts whole."""
    import duckdb

    from leadscore.columnar import run as columnar_run
    from leadscore.columnar.engine import Rows

    class Scorer:
        numeric_fields: dict[str, str] = {}

        def __init__(self) -> None:
            self.fits: dict[str, int] = {}
            self.stats: dict[str, Any] = {}
            self.con = type("Con", (), {"abort": lambda self: None})()

        def drop_batch(self) -> None:
            pass

    monkeypatch.setattr(columnar_run, "add_lead", lambda *args: None)
    monkeypatch.setattr(columnar_run, "MIN_PART_LEADS", 40)
    tried: list[int] = []

    def run(part: dict[int, Any], rows: Any) -> None:
        tried.append(len(part))
        if len(part) > 100:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 16.0 MiB")

    scorer = Scorer()
    assert columnar_run.in_parts(scorer, dict.fromkeys(range(400)), Rows(), 0, None, run, "cards") == []
    assert tried == [400, 200, 100, 100, 200, 100, 100] and scorer.fits == {"cards": 100}
    tried[:] = []
    assert columnar_run.in_parts(scorer, dict.fromkeys(range(400, 650)), Rows(), 0, None, run, "cards") == []
    assert tried == [100, 100, 50]
    tried[:] = []
    columnar_run.in_parts(scorer, dict.fromkeys(range(100)), Rows(), 0, None, run, "accounts")
    assert tried == [100]


@pytest.mark.parametrize("packs", [("-r", "firr-base"), ()])
@pytest.mark.parametrize("most", [90, 0])
def test_a_batch_of_records_out_of_duckdb_memory_is_halved_and_scored_in_sql(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packs: tuple[str, ...], most: int) -> None:
    """Leads the python reader makes (CSV, Parquet, an activities file, --next-steps; here the file
    scan turned off) are scored in batches of records; a batch DuckDB runs out of memory on is halved
    as a file's block is, down to MIN_PART_LEADS leads, and only a part still out of memory at that
    size goes to the python engine. Every pack's account roll-up included (its pass in DuckDB too),
    same bytes."""
    import leadscore_cli.main as cli_main
    from leadscore.columnar import run as columnar_run

    source = _generated(tmp_path, 600, 5)
    python = _score(tmp_path, source, "python", *packs)
    monkeypatch.setattr(cli_main, "columnar_reads", lambda *args: False)  # the leads read as records
    monkeypatch.setattr(columnar_run, "MIN_PART_LEADS", 40)
    by_python = _python_scored(monkeypatch)
    assert _score(tmp_path, source, "duckdb", *packs) == python
    odd, by_python[:] = list(by_python), []  # the leads the SQL does not reproduce (none expected here)
    sizes = _out_of_memory_past(monkeypatch, most)
    assert _score(tmp_path, source, "duckdb", *packs) == python
    sizes = [size for size in sizes if size]  # not the plan's check on no leads
    assert sizes[0] == 600 - len(odd)
    if most:
        assert min(sizes) <= most and max(s for s in sizes if s <= most) > 20 and by_python == odd  # all in SQL
    else:
        assert len(by_python) == 600 and min(sizes) > 20  # no part halved below MIN_PART_LEADS


def test_the_account_pass_gives_a_block_scored_the_python_way_the_python_accounts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lead the python engine scores in a columnar run (its block failed in SQL, or an odd line)
    reads its account's signals from the SQL account pass: every account's values and evidence
    equal the python engine's, an account whose engaged people have no seniority included (0 senior
    engaged contacts, not unknown: an enterprise router compares that count with 2). A later lead with
    an id met before is no contact: its line is rejected, so it adds no engaged person to A-UNTITLED."""
    from leadscore.columnar import accounts as columnar_accounts
    from leadscore.io.duplicates import reject_duplicates
    from leadscore.io.readers import read_leads

    visit = '"activities": [{"type": "webinar_attended", "at": "2026-11-20T10:00:00Z"}]'
    untitled = [f'{{"id": "U-{i}", "email": "u{i}@untitled.io", "account_id": "{account}", {visit}}}'
                for i, account in enumerate(("A-UNTITLED", "A-UNTITLED", "A-SOLO", "A-UNTITLED"))]
    untitled[-1] = untitled[-1].replace('"U-3"', '"L-0000007"')  # the id of a generated lead
    source = _generated(tmp_path, 400, 11, *untitled)
    finished = []
    finish = columnar_accounts.AccountPass.finish

    def kept(self: Any, *args: Any, **kwargs: Any) -> Any:
        finished.append(finish(self, *args, **kwargs))
        return finished[-1]

    monkeypatch.setattr(columnar_accounts.AccountPass, "finish", kept)
    leads = [item for item in reject_duplicates(read_leads(str(source))) if isinstance(item, Lead)]
    with Engine(as_of=AS_OF) as python, Engine(backend="duckdb", as_of=AS_OF) as columnar:
        assert python.needs_accounts
        index = python.build_accounts(leads)
        list(scan_jsonl(columnar, str(source), source.name, AS_OF, explain=False, top=3))
        assert len(finished) == 1
        keys = sorted(index.accounts)
        assert "A-UNTITLED" in keys and len(keys) > 50
        for key in keys:
            want, have = index.signals_for(key), finished[0].signals_for(key)
            assert have == want, key
            assert getattr(have, "evidence", {}) == want.evidence, key
        assert finished[0].signals_for("A-UNTITLED")["account.senior_engaged_contacts"] == 0
        assert finished[0].signals_for("A-UNTITLED")["account.engaged_contacts"] == 2
        assert finished[0].signals_for(None) == {} and finished[0].signals_for("A-NOBODY") == {}


def test_leads_the_python_engine_scores_read_their_accounts_once_a_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third of the leads with an integer past 2**53 in a custom field (the python engine scores them in a columnar
    run, on the SQL account pass's values), a duplicate and an odd line: the python engine's bytes,
    every such lead's account values read in one query a block, never one a lead (which scanned
    every account's row for each lead: 3.6x the python engine's time on such a file)."""
    from leadscore.columnar import scan
    from leadscore.columnar.accounts import SqlAccounts

    source = _generated(tmp_path, 600, 13)
    lines = source.read_text(encoding="utf-8").splitlines()
    for n in range(0, len(lines), 3):
        lead = json.loads(lines[n])
        lead.setdefault("fields", {})["ratio"] = 2**60 + n
        lines[n] = json.dumps(lead)
    source.write_text("\n".join([*lines, *ODD_AND_DUPLICATE]) + "\n", encoding="utf-8")
    python = _score(tmp_path, source, "python")
    monkeypatch.setattr(scan, "BLOCK_BYTES", 300_000)  # several blocks
    fetched: list[int] = []
    one_by_one: list[str] = []
    fetch, signals_for = SqlAccounts.fetch, SqlAccounts.signals_for

    def counted_fetch(self: Any, keys: Any) -> None:
        fetch(self, keys)
        fetched.append(len(self.fetched))

    def noted(self: Any, key: Any) -> Any:
        if key is not None and key not in self.fetched:
            one_by_one.append(key)
        return signals_for(self, key)

    monkeypatch.setattr(SqlAccounts, "fetch", counted_fetch)
    monkeypatch.setattr(SqlAccounts, "signals_for", noted)
    by_python = _python_scored(monkeypatch)
    assert _score(tmp_path, source, "duckdb") == python and python[3].startswith("scored 601 + rejected 1 ")
    assert len(by_python) >= 200 and len(fetched) > 2 and sum(fetched) >= 150 and one_by_one == []


# Doubles in custom fields: compared as Python compares them (3.0 == 3), printed as Python prints them.
FLOAT_PACK = {
    "pack": {"name": "decimals", "version": "1"},
    "categories": {"fit": {}},
    "fields": {"budget": {"type": "number"}, "seats": {"type": "int"}, "label": {"type": "str"}},
    "rules": [
        {"id": "fit.ratio", "category": "fit", "points": 5, "reason": "High ratio",
         "when": {"signal": "fields.ratio", "gte": 1.5}},
        {"id": "fit.ratio_three", "category": "fit", "points": 2, "reason": "Ratio of three",
         "when": {"signal": "fields.ratio", "eq": 3}},
        {"id": "fit.ratio_low", "category": "fit", "points": -1, "reason": "Low ratio",
         "when": {"signal": "fields.ratio", "lt": 0.5}},
        {"id": "fit.budget", "category": "fit", "points": 7, "reason": "Budget over 1,000",
         "when": {"signal": "fields.budget", "gt": 1000}},
        {"id": "fit.seats", "category": "fit", "points": 3, "reason": "Three seats",
         "when": {"signal": "fields.seats", "eq": 3}},
        {"id": "fit.label", "category": "fit", "points": 1, "reason": "Labelled",
         "when": {"signal": "fields.label", "exists": True}},
    ],
    "bands": [{"name": "cold", "min": 0}, {"name": "warm", "min": 8}],
}
RATIOS = (0.0, -0.0, 0.5, 1.5, 3.0, 3, 1e16, 1e-7, 5e-324, 2.5e8, 1234.5678, 1e300, -2.75, "x", True, None)


def _float_leads(with_huge: bool) -> list[dict]:
    leads = []
    for ratio in RATIOS:
        for budget in (1000.5, 1000.0, 1001, 3.0, None, "1000.25", " 2e3 "):
            for seats in (3.0, 3.5, 3, None, "+3", "3.0", *((1e20,) if with_huge else ())):
                fields = {"ratio": ratio, "budget": budget, "seats": seats, "label": ratio}
                leads.append({"id": f"F-{len(leads) + 1}", "email": "dana@acme.io",
                              "fields": {k: v for k, v in fields.items() if v is not None}})
    return leads


def _cell(value: Any) -> str:
    """A CSV cell the CSV reader reads back as ``value`` (text stays text, a float's repr its float)."""
    return "" if value is None else value if isinstance(value, str) else "true" if value is True else repr(value)


class _FieldRouter:
    """A router (per lead only) that shows the custom field values it is handed, type and all."""

    from leadscore.plugin import hookimpl, reads_signals

    @staticmethod
    @hookimpl
    @reads_signals("fields.ratio", "fields.budget", "fields.seats", "fields.label")
    def leadscore_route_lead(card: Any, lead: Any, ctx: Any) -> Any:
        from leadscore.plugin import Route

        shown = ",".join(f"{name}={ctx['signals'].get('fields.' + name)!r}" for name in ("ratio", "budget", "seats", "label"))
        return Route("look", shown, 1, "the fields", shown)

    leadscore_route_lead.reads_lead = ("id",)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("explain", [(), ("--explain",)])
def test_doubles_in_custom_fields_are_scored_in_sql_as_the_python_engine_scores_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, explain: tuple[str, ...]) -> None:
    """A CRM export's decimal columns (a CSV cell such as 12.5 is a float custom field) are read by
    the SQL: compared as Python compares them, shown in evidence as Python prints them (1e+16,
    5e-324, -0.0), and handed to a router as the lead's own values (3.0 stays a float); so is the
    text of a number or int field (" 2e3 " is 2000.0 to a number field, "+3" is 3 to an int field,
    "3.0" nothing). Only an int field's whole float beyond 2**53 leaves its lead to the python
    engine. Output and routes equal the python engine's, on the JSON Lines scan and on the records
    path (CSV)."""
    import csv

    import tomli_w

    pack = tmp_path / "decimals.toml"
    pack.write_text(tomli_w.dumps(FLOAT_PACK), encoding="utf-8")
    leads = _float_leads(with_huge=fmt == "jsonl")
    source = tmp_path / f"decimals.{fmt}"
    if fmt == "jsonl":
        source.write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    else:  # CSV cells: a float's text reads back as that float, True as true
        with source.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["id", "email", "fields.ratio", "fields.budget", "fields.seats", "fields.label"])
            for lead in leads:
                fields = lead["fields"]
                cells = [_cell(fields.get(name)) for name in ("ratio", "budget", "seats", "label")]
                out.writerow([lead["id"], lead["email"], *cells])

    def run(engine: str) -> tuple[int, str, str]:
        pm = PluginManager()
        pm.register(_FieldRouter, "field-router")
        result = CliRunner().invoke(build_cli(pm), [
            "score", str(source), "--as-of", "2026-11-23", "-r", str(pack), "--engine", engine, "--format", "jsonl",
            *explain])
        return result.exit_code, result.stdout, result.stderr

    python = run("python")
    by_python = _python_scored(monkeypatch)
    assert run("duckdb") == python and python[0] == 0
    cards = [json.loads(line) for line in python[1].splitlines()]
    assert len(cards) == len(leads) and {card["route"]["queue"].count("=") for card in cards} == {4}
    shown = {card["route"]["queue"] for card in cards}
    assert "ratio=3.0,budget=1000.5,seats=3,label=None" in shown and "ratio=3,budget=1001,seats=3,label='3'" in shown
    if explain:
        evidence = {line["evidence"] for card in cards for line in card["ledger"]}
        assert {"ratio=1e+16", "ratio=250000000.0", "ratio=5e-324", "ratio=-0.0", "ratio=1e-07", "budget=1000.5",
                "budget=1000.25", "budget=2000.0", "seats=3", "label=3"} <= evidence
    # The SQL read every lead but those with seats = 1e20 (an int field: int(1e20) is past 2**53).
    assert len(by_python) == (len(RATIOS) * 7 if fmt == "jsonl" else 0)


def test_a_plan_that_does_not_compile_is_said_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.columnar.engine import ColumnarScorer

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Binder Error: no function list_filter")

    monkeypatch.setattr(ColumnarScorer, "run", failing)
    out = tmp_path / "fallback.jsonl"
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(SAMPLES / "leads.csv"), "--activities", str(SAMPLES / "activities.csv"), "-r", "firr-base",
        "--as-of", "2026-11-23", "--engine", "duckdb", "-o", str(out)])
    assert result.exit_code == 0 and out.read_text(encoding="utf-8").count("\n") == 46
    assert ("leadscore: note: the columnar engine cannot run this run's plan (the plan does not run in DuckDB: Binder "
            "Error: no function list_filter), so the python engine scored every lead (same cards, slower)"
            in result.stderr.splitlines())


# --- the next block decoded while this one is scored ----------------------------------------------


def _scanned(engine: Engine, source: Path, block_bytes: int) -> tuple[list[Any], list[Any], Any, Any]:
    """Everything a scan gives: its cards (as dicts) and rejections in order, the activities it left
    out, the activity types no pack knows and the custom field values that do not fit."""
    from collections import Counter

    from leadscore.io import card_to_dict
    from leadscore.io.readers import ReadReport
    from leadscore.model import Rejection

    report, unknown, misfits = ReadReport(), Counter(), Counter()
    found = scan_jsonl(engine, str(source), "in.jsonl", AS_OF, explain=True, top=3, block_bytes=block_bytes,
                       report=report, unknown_types=unknown, misfits=misfits)
    assert found is not None
    items = [item if isinstance(item, Rejection) else card_to_dict(item, explain=True) for item in found]
    return items, report.skipped, unknown, misfits


@pytest.mark.slow
@pytest.mark.parametrize("switch", ["READ_AHEAD", "KEEP_BLOCKS"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.sampled_from([*GOOD, *BAD_LINES, *ODD_AND_DUPLICATE]), min_size=1, max_size=24),
       block_bytes=st.sampled_from((2_000, 5_000, 20_000)))
def test_a_scan_gives_the_same_with_its_shortcuts_on_and_off(engine: Engine, tmp_path: Path, lines: list[str],
                                                             block_bytes: int, switch: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Every installed pack (so the account pass reads the file twice), with each of the scan's two
    shortcuts on and off: the next block decoded in a thread while DuckDB scores this one
    (READ_AHEAD, against each block decoded in turn), and the scoring pass reading back the account
    pass's copy of each block (KEEP_BLOCKS, against decoding the lines again). Either way the same
    cards, rejections (odd lines, lines with an activity time the SQL does not read, duplicate ids
    across blocks), left-out activities and counts."""
    from leadscore.columnar import scan

    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not any(line.strip() for line in lines):
        return  # no leads: the scan refuses the file either way
    monkeypatch.setattr(scan, switch, False)
    off = _scanned(engine, source, block_bytes)
    monkeypatch.setattr(scan, switch, True)
    assert _scanned(engine, source, block_bytes) == off


def _kept_scan(engine: Engine, source: Path, monkeypatch: pytest.MonkeyPatch,
               spoil: Any = None) -> tuple[list[Any], list[int], list[str], bool]:
    """A scan of ``source`` in blocks of 3,000 bytes with every block kept (``spoil(kept, first)`` run
    on each block's copy as it is made): what it gives, the first line of each block kept, the
    folder's files when the first card comes, and whether the folder is there after the scan."""
    from leadscore.columnar import scan

    made: list[Any] = []
    firsts: list[int] = []
    with_odd: list[int] = []  # blocks with lines left to the python reader
    lines_read: list[int] = []  # the start of each block whose lines the scoring pass read again

    class Watched(scan.KeptBlocks):
        def __init__(self, folder: str) -> None:
            super().__init__(folder)
            made.append(self)

        def keep(self, con: Any, first: int, odd: list[int]) -> None:
            super().keep(con, first, odd)
            firsts.append(first)
            with_odd.extend([first] if odd else [])
            if spoil is not None:
                spoil(self, first)

    monkeypatch.setattr(scan, "KeptBlocks", Watched)
    read = scan.SpanLines.read
    monkeypatch.setattr(scan.SpanLines, "read", lambda lines: lines_read.append(lines.start) or read(lines))
    items: list[Any] = []
    files: list[str] = []
    for item in scan_jsonl(engine, str(source), "in.jsonl", AS_OF, explain=False, top=3, block_bytes=3_000):
        if not items:
            files = sorted(path.name for path in made[0].folder.iterdir())
        items.append(item)
    assert len(made) == 1
    if spoil is None:  # the scoring pass reads again the lines of the blocks with odd lines only
        assert len(set(lines_read)) == len(with_odd) > 0
    return items, firsts, files, made[0].folder.exists()


def _decodes_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first line of each block the scan decodes, in the order decoded."""
    from leadscore.columnar import scan

    decoded: list[int] = []
    decode = scan.decode_block
    monkeypatch.setattr(scan, "decode_block", lambda lines, first, *rest: decoded.append(first) or decode(lines, first, *rest))
    return decoded


def test_the_account_pass_keeps_each_block_once_and_the_scoring_pass_removes_what_it_read(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.columnar import scan
    from leadscore.io import card_to_dict
    from leadscore.model import Rejection

    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([*GOOD, *BAD_LINES, *GOOD[:5]]) + "\n", encoding="utf-8")
    as_dicts = lambda items: [i if isinstance(i, Rejection) else card_to_dict(i) for i in items]  # noqa: E731
    monkeypatch.setattr(scan, "KEEP_BLOCKS", False)
    decoded_again = as_dicts(scan_jsonl(engine, str(source), "in.jsonl", AS_OF, explain=False, top=3, block_bytes=3_000))
    monkeypatch.setattr(scan, "KEEP_BLOCKS", True)
    decoded = _decodes_counted(monkeypatch)
    items, firsts, files, left = _kept_scan(engine, source, monkeypatch)
    assert as_dicts(items) == decoded_again
    assert len(firsts) > 3 and decoded == firsts  # each block decoded once, in the account pass only
    # When the first card comes, the first block was read back and its files removed; the others wait.
    assert files == sorted(f"{first}.{part}" for first in firsts[1:] for part in ("activities.parquet", "leads.parquet", "odd"))
    assert not left  # and the folder goes when the scan ends


def test_kept_blocks_go_when_the_scan_is_left_after_its_first_card(engine: Engine, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.columnar import scan

    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(GOOD * 3) + "\n", encoding="utf-8")
    made: list[Any] = []
    kept_blocks = scan.KeptBlocks
    monkeypatch.setattr(scan, "KEEP_BLOCKS", True)
    monkeypatch.setattr(scan, "KeptBlocks", lambda folder: made.append(kept_blocks(folder)) or made[-1])
    found = scan_jsonl(engine, str(source), "in.jsonl", AS_OF, explain=False, top=3, block_bytes=3_000)
    next(found)
    assert len(made) == 1 and len(list(made[0].folder.iterdir())) > 3  # the later blocks wait on disk
    found.close()
    assert not made[0].folder.exists()


def test_each_contacts_account_row_waits_in_line_order_in_one_file_that_goes_with_the_scan(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scoring pass reads each block's account rows by its range of lines from one Parquet file
    sorted by line, whose row groups then cover ranges of lines that do not overlap (so DuckDB skips
    all but a block's own); the file's folder goes when the scan is left."""
    import duckdb

    from leadscore.columnar import accounts

    source = _generated(tmp_path, 7_000, 5)
    made: list[Any] = []
    folder = accounts.ParquetFolder
    monkeypatch.setattr(accounts, "ParquetFolder", lambda where, prefix: made.append(folder(where, prefix)) or made[-1])
    monkeypatch.setattr(accounts, "CONTACT_ACCOUNTS_ROW_GROUP", 2_048)  # DuckDB's smallest
    found = scan_jsonl(engine, str(source), "in.jsonl", AS_OF, explain=False, top=3, block_bytes=1_000_000)
    next(found)
    by_contact = [m for m in made if m.folder.name.startswith("contact-accounts-")]
    assert len(by_contact) == 1
    [path] = list(by_contact[0].folder.iterdir())
    groups = duckdb.sql(f"SELECT row_group_id, min(stats_min::BIGINT), max(stats_max::BIGINT), sum(row_group_num_rows) "
                        f"FROM parquet_metadata('{path}') WHERE path_in_schema = 'k' GROUP BY row_group_id "
                        f"ORDER BY row_group_id").fetchall()
    lines = [k for (k,) in duckdb.sql(f"SELECT k FROM read_parquet('{path}')").fetchall()]
    assert len(groups) >= 3 and lines == sorted(lines) and len(set(lines)) == len(lines)
    assert all(low <= high < later_low for (_, low, high, _), (_, later_low, _, _) in zip(groups, groups[1:]))
    assert all(rows <= 4_096 for *_, rows in groups)  # DuckDB aims at the size asked, give or take a vector
    assert set(lines) <= set(range(1, 7_001)) and len(lines) > 6_000  # the leads with an account
    found.close()
    assert not by_contact[0].folder.exists() and not path.exists()


@pytest.mark.parametrize("spoiled", ["not written", "not readable"])
def test_a_block_the_account_pass_could_not_keep_is_decoded_again_with_the_same_cards(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoiled: str) -> None:
    from leadscore.columnar import scan
    from leadscore.io import card_to_dict
    from leadscore.model import Rejection

    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([*GOOD, *BAD_LINES]) + "\n", encoding="utf-8")
    as_dicts = lambda items: [i if isinstance(i, Rejection) else card_to_dict(i) for i in items]  # noqa: E731
    monkeypatch.setattr(scan, "KEEP_BLOCKS", False)
    decoded_again = as_dicts(scan_jsonl(engine, str(source), "in.jsonl", AS_OF, explain=False, top=3, block_bytes=3_000))
    monkeypatch.setattr(scan, "KEEP_BLOCKS", True)
    spoilt: list[int] = []

    def spoil(kept: Any, first: int) -> None:
        if len(spoilt) % 2 == 0:  # every other block
            if spoiled == "not written":
                kept._remove(first)
                kept.blocks.discard(first)
            else:
                kept._paths(first)[1].write_bytes(b"not parquet")
        spoilt.append(first)

    decoded_blocks = _decodes_counted(monkeypatch)
    items, firsts, _, left = _kept_scan(engine, source, monkeypatch, spoil)
    assert as_dicts(items) == decoded_again
    assert firsts == spoilt and len(firsts) > 3
    assert sorted(decoded_blocks) == sorted(firsts + firsts[::2])  # every other block decoded again, the rest once
    assert not left


def test_kept_blocks_that_cannot_be_written_are_not_kept(tmp_path: Path) -> None:
    import duckdb

    from leadscore.columnar.scan import KeptBlocks

    con = duckdb.connect()
    con.execute("CREATE TABLE leads AS SELECT 1 AS k, 'L-1' AS id")
    con.execute("CREATE TABLE activities AS SELECT 1 AS k, 0 AS pos")
    kept = KeptBlocks(str(tmp_path))
    kept.keep(con, 1, [4, 9])
    assert kept.has(1)
    con.execute("CREATE OR REPLACE TABLE leads AS SELECT 2 AS k, 'L-2' AS id")
    con.execute("DROP TABLE activities")  # the copy of the block fails half-way
    kept.keep(con, 7, [])
    assert not kept.has(7)
    assert sorted(p.name for p in kept.folder.iterdir()) == ["1.activities.parquet", "1.leads.parquet", "1.odd"]
    con.execute("CREATE TABLE activities AS SELECT 5 AS k")
    assert kept.load(con, 1) == [4, 9] and not kept.has(1)
    assert con.execute("SELECT k, id FROM leads").fetchall() == [(1, "L-1")]
    assert kept.load(con, 1) is None  # read back once
    assert list(kept.folder.iterdir()) == []
    kept.close()
    assert not kept.folder.exists()


def test_ahead_gives_the_items_in_order_making_at_most_one_ahead() -> None:
    import threading

    from leadscore.columnar.scan import Ahead

    made: list[int] = []
    threads: set[str] = set()

    def source():
        for number in range(5):
            made.append(number)
            threads.add(threading.current_thread().name)
            yield number

    for on in (True, False):
        made.clear()
        threads.clear()
        ahead, got = Ahead(source(), on), []
        ahead.ask()
        while (item := ahead.take()) is not None:
            assert made == list(range(item + 1))  # nothing made past the item taken...
            got.append(item)
            ahead.ask()
            ahead.ask()  # ...and asking twice makes one
            if on:
                ahead.coming.result()
                assert made == list(range(min(item + 2, 5)))
        ahead.close()
        assert got == [0, 1, 2, 3, 4]
        assert all(name.startswith("leadscore-read") for name in threads) == on


def test_ahead_shortens_the_switch_interval_while_open_and_gives_it_back_after_the_last() -> None:
    import sys

    from leadscore.columnar import scan

    before = sys.getswitchinterval()
    assert before > scan.SWITCH_INTERVAL  # the interpreter's 5 ms, unless a test changed it
    off = scan.Ahead(iter(range(3)), on=False)
    assert sys.getswitchinterval() == before  # decoding in turn: nothing to hand over
    first, second = scan.Ahead(iter(range(3))), scan.Ahead(iter(range(3)))
    assert sys.getswitchinterval() == scan.SWITCH_INTERVAL
    first.close()
    first.close()  # a second close gives back nothing more
    assert sys.getswitchinterval() == scan.SWITCH_INTERVAL  # the other still reads ahead
    second.close()
    off.close()
    assert sys.getswitchinterval() == before


def test_ahead_raises_an_error_where_its_item_would_come_and_closes_the_source() -> None:
    from leadscore.columnar.scan import Ahead

    closed: list[bool] = []

    def failing():
        yield 1
        raise ValueError("line 2 of the block")

    ahead = Ahead(failing())
    ahead.ask()
    assert ahead.take() == 1
    ahead.ask()
    with pytest.raises(ValueError, match="line 2"):
        ahead.take()
    ahead.close()

    def endless():
        try:
            while True:
                yield 1
        finally:
            closed.append(True)

    ahead = Ahead(endless())
    ahead.ask()
    assert ahead.take() == 1
    ahead.ask()  # being made when the caller stops
    ahead.close()
    assert closed == [True]


@pytest.mark.parametrize("packs", [("-r", "firr-base"), ()])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_explained_cards_joined_from_rows_that_span_batches_are_the_python_engines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packs: tuple[str, ...], fmt: str) -> None:
    """With --explain, JSON Lines and CSV cards come from rows of text (each card's start, its ledger
    lines, its end) joined by lead in Arrow batches: with batches of a few rows nearly every lead's rows
    span two or more, and a lead with no ledger line (an empty ledger) ends its line alone."""
    import leadscore.columnar.engine as engine

    monkeypatch.setattr(engine, "JOINED_BATCH_ROWS", 7)
    source = tmp_path / "leads.jsonl"
    bare = json.dumps({"id": "L-bare", "email": "someone@example.org"})
    source.write_text("\n".join([*GOOD[:20], bare, *GOOD[20:40]]) + "\n", encoding="utf-8")
    extra = ("--explain", *packs, *(("--format=csv",) if fmt == "csv" else ()))
    python = _score(tmp_path, source, "python", *extra)
    monkeypatch.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
    duckdb = _score(tmp_path, source, "duckdb", *extra)
    assert duckdb == python and python[0] == 0
    (line,) = [line for line in python[1].splitlines() if "L-bare" in line]
    assert line.endswith('"ledger":[]}' if fmt == "jsonl" else ",[]")
    assert python[1].count('"ledger":[{' if fmt == "jsonl" else ',"[{""rule_id"":') == 40


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.text(max_size=4)), max_size=40), st.integers(1, 9))
def test_joined_rows_joins_each_leads_texts_across_batches(rows: list[tuple[int, str]], size: int) -> None:
    import pyarrow as pa

    from leadscore.columnar.render import joined_rows

    rows.sort(key=lambda row: row[0])  # the query's rows come in the cards' order
    table = pa.table({"k": pa.array([k for k, _ in rows], pa.int64()), "text": [text for _, text in rows]})
    wanted: dict[int, str] = {}
    for k, text in rows:
        wanted[k] = wanted.get(k, "") + text
    found = joined_rows(table.to_batches(max_chunksize=size))
    assert [(row["k"], row["text"]) for row in found] == list(wanted.items())


_EMAIL_PARTS = st.sampled_from(["dana", "Dana.Lee", "d+x", "", " ", "\u00a0", "\u2028", "\n", "\u00e9", "ACME.io", "gmail.com",
                                "googlemail.com", "@", ".", "x\u017f"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=8), st.lists(_EMAIL_PARTS, max_size=6).map("".join)),
       st.sampled_from(["L-1", "Lead 2"]))
def test_the_person_key_in_sql_is_the_python_person_key(email: str | None, lead_id: str) -> None:
    """person_sql gives person_key's text for a scored lead (its id is never blank), and leaves to
    Python (``ls_person``) the addresses it cannot write: not ASCII, or with Python's spaces at either end."""
    import duckdb

    from leadscore.columnar import accounts

    con = duckdb.connect()
    con.create_function("ls_person", accounts._person, ["VARCHAR", "VARCHAR"], "VARCHAR", null_handling="special")
    key = accounts.person_sql(q.col("email"), q.col("id"), lambda e, i: q.call("ls_person", e, i))
    [(found,)] = con.execute(f"SELECT {q.sql(key)} FROM (SELECT ?::VARCHAR AS email, ?::VARCHAR AS id)",
                             [email, lead_id]).fetchall()
    assert found == accounts._person(email, lead_id)
