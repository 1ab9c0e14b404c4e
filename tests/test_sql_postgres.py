"""`leadscore sql --dialect postgres`: the query, run by a real PostgreSQL server over the two
relations typed as docs/scale.md says, gives the python engine's cards byte for byte on every lead
it marks exact, whatever the session's time zone.
"""

from __future__ import annotations

import importlib.util
from datetime import timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (uv sync installs leadscore[history])")

from leadscore import Engine, PluginManager  # noqa: E402
from leadscore.columnar.export import warehouse_query  # noqa: E402
from leadscore.model import Lead  # noqa: E402
from leadscore_cli.main import build_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The session's zone must play no part: days and times are read as UTC whatever it is.
SESSION_ZONE = "America/Los_Angeles"


def _sql_export_tests() -> ModuleType:
    """tests/test_sql_export.py as a module: its relations, leads and comparisons are shared, not copied."""
    spec = importlib.util.spec_from_file_location("ls_sql_export_tests_pg", ROOT / "tests" / "test_sql_export.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


ex = _sql_export_tests()
AS_OF = ex.AS_OF


def _ddl(name: str, columns: str) -> str:
    return f"CREATE TABLE {name} ({columns})"


def lead_columns(stamp: str, doc: str) -> str:
    return (f'id text, email text, title text, source text, created_at {stamp}, account_id text, "company.name" text, '
            f'"company.domain" text, "company.industry" text, "company.employees" bigint, '
            f'"company.annual_revenue" double precision, "company.country" text, "company.tier" text, fields {doc}')


def activity_columns(stamp: str, doc: str) -> str:
    return f'lead_id text, type text, "at" {stamp}, properties {doc}'


@pytest.fixture(scope="module")
def pg(postgres_server: Any) -> Any:
    """A connection to a fresh database, its session in a zone west of UTC, without JIT compilation
    (as docs/scale.md advises: compiling the query's expressions takes longer than running it)."""
    name = postgres_server.new_database()
    con = psycopg.connect(postgres_server.url(name), autocommit=True, options=f"-c TimeZone={SESSION_ZONE} -c jit=off")
    try:
        yield con
    finally:
        con.close()
        postgres_server.drop_database(name)


def load(con: Any, leads: list[Lead], *, names: tuple[str, str] = ("leads", "activities"), stamp: str = "timestamp",
         doc: str = "text") -> None:
    """The two relations (see tests/test_sql_export.relation_rows) as PostgreSQL tables, replacing
    any of the same names: times are UTC (``timestamp``) or instants (``timestamptz``)."""
    for name, columns, rows in zip(names, (lead_columns(stamp, doc), activity_columns(stamp, doc)),
                                   ex.relation_rows(leads)):
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(_ddl(name, columns))
        values = list(rows.values())
        if stamp == "timestamptz":  # the naive UTC times as instants (the session's zone is not UTC)
            values = [[v.replace(tzinfo=timezone.utc) if hasattr(v, "tzinfo") and v is not None else v for v in c]
                      for c in values]
        quoted = ", ".join(f'"{c}"' for c in rows)
        with con.cursor().copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
            for row in zip(*values):
                copy.write_row(row)


def run_query(con: Any, leads: list[Lead], rulepacks: list[str], pm: PluginManager | None = None,
              **load_options: Any) -> tuple[list[tuple], dict[str, str]]:
    """The query without its ledger column, and the python engine's JSON lines."""
    with Engine(plugins=pm or PluginManager(entry_points=False), rulepacks=rulepacks, as_of=AS_OF) as engine:
        text = warehouse_query(engine, AS_OF, dialect="postgres")
        want = ex.python_lines(engine, leads)
    load(con, leads, **load_options)
    return con.execute(text).fetchall(), want


def run_ledger_query(con: Any, leads: list[Lead], rulepacks: list[str] | None, pm: PluginManager | None = None) -> int:
    """tests/test_sql_export.run_ledger_query on PostgreSQL: cards and ledgers of every exact row
    equal the python engine's; returns how many rows were exact."""
    def run(text: str, loaded: list[Lead]) -> list[tuple]:
        load(con, loaded)
        return con.execute(text).fetchall()

    return ex.run_ledger_query(leads, rulepacks, pm, dialect="postgres", run=run)


# --- the query scores as the python engine does ------------------------------------------------


@pytest.mark.parametrize("packs", [["firr-base"], ["firr-base", "midmarket"]])
def test_sample_leads_score_alike(pg: Any, packs: list[str]) -> None:
    leads = ex.sample_leads()
    rows, want = run_query(pg, leads, packs, PluginManager())
    ex.assert_same(rows, want)
    assert {r[0]: r[4] for r in rows} == {lead.id: ex.expected_exact(lead) for lead in leads}
    # As on DuckDB, the leads marked inexact (an activity age on a rounding tie) score alike too.
    assert sum(1 for r in rows if r[3] == want[r[0]]) == len(rows) and not all(r[4] for r in rows)


@pytest.mark.parametrize("packs", [["firr-base"], ["firr-base", "midmarket"]])
def test_the_ledger_column_is_the_explain_ledger(pg: Any, packs: list[str]) -> None:
    assert run_ledger_query(pg, ex.sample_leads(), packs, PluginManager()) >= 40


def test_the_enterprise_pack_scores_alike_with_its_account_roll_up(pg: Any) -> None:
    """firr-base + enterprise: buying-committee counts, a same_account pattern, the ABM router."""
    leads = sorted(ex.sample_leads(), key=lambda lead: lead.id)
    assert run_ledger_query(pg, leads, ["firr-base", "enterprise"], PluginManager()) >= 38


def test_activities_at_the_same_time_without_properties_come_first(pg: Any) -> None:
    assert run_ledger_query(pg, ex.same_time_leads(), ["firr-base"]) == 2


def test_every_installed_pack_scores_alike(pg: Any) -> None:
    """Every installed pack, the syndication plugin's property checks in SQL: the sample leads and
    content-syndication leads whose properties the SQL forms read (or mark inexact)."""
    crafted = ex.syndication_leads(40, 1, ex.PLAIN_PROPS) + ex.syndication_leads(20, 2, ex.PLAIN_PROPS + ex.UNTRUSTED_PROPS)
    leads = sorted(ex.sample_leads() + crafted, key=lambda lead: lead.id)
    assert run_ledger_query(pg, leads, None, PluginManager()) >= 38 + 40
    rows, _ = run_query(pg, crafted, ["firr-base", "syndication"], PluginManager())
    assert {r[0]: r[4] for r in rows} == ex.syndication_exact(crafted)


def test_people_are_counted_once_across_their_addresses(pg: Any, tmp_path: Path) -> None:
    """The committee pack of tests/test_sql_export.py on generated accounts: account keys, people
    counted once across their addresses, the best contact's total, same_account's first N."""
    pack = tmp_path / "committee.toml"
    pack.write_text(ex.COMMITTEE_PACK, encoding="utf-8")
    assert run_ledger_query(pg, ex.generated_leads(300), ["firr-base", "enterprise", str(pack)], PluginManager()) > 200


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.function_scoped_fixture])
@given(st.lists(ex.account_lead, min_size=3, max_size=25, unique_by=lambda lead: lead.id))
def test_any_account_scores_alike(pg: Any, tmp_path_factory: Any, leads: list[Lead]) -> None:
    pack = tmp_path_factory.mktemp("committee") / "committee.toml"
    pack.write_text(ex.COMMITTEE_PACK, encoding="utf-8")
    run_ledger_query(pg, sorted(leads, key=lambda lead: lead.id), ["firr-base", str(pack)])


def test_instants_and_json_columns_score_alike(pg: Any) -> None:
    """``timestamptz`` times and ``json`` documents read as ``timestamp`` and ``text`` do."""
    leads = ex.sample_leads()
    rows, want = run_query(pg, leads, ["firr-base"], stamp="timestamptz", doc="json")
    ex.assert_same(rows, want)
    assert sum(1 for r in rows if r[3] == want[r[0]]) == len(rows)


@pytest.mark.slow
def test_generated_leads_score_alike(pg: Any) -> None:
    assert run_ledger_query(pg, ex.generated_leads(1000, seed=29), ["firr-base"]) > 950


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.function_scoped_fixture])
@given(st.lists(ex.lead_strategy, min_size=1, max_size=30, unique_by=lambda lead: lead.id))
def test_any_exact_lead_scores_alike(pg: Any, leads: list[Lead]) -> None:
    run_ledger_query(pg, leads, ["firr-base"])


def test_relations_are_named_by_the_team(pg: Any) -> None:
    leads = ex.sample_leads()[:5]
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF) as engine:
        text = warehouse_query(engine, AS_OF, leads="crm.contacts", activities="crm_events", dialect="postgres")
        want = ex.python_lines(engine, leads)
    pg.execute("CREATE SCHEMA IF NOT EXISTS crm")
    load(pg, leads, names=("crm.contacts", "crm_events"))
    assert '"crm"."contacts"' in text and '"leads"' not in text
    ex.assert_same(pg.execute(text).fetchall(), want)


# --- the command ---------------------------------------------------------------------------------


def test_the_command_prints_a_query_postgres_runs(pg: Any, tmp_path: Path) -> None:
    out = tmp_path / "score.sql"
    result = CliRunner().invoke(build_cli(PluginManager(entry_points=False)),
                                ["sql", "-r", "firr-base", "--as-of", "2026-11-23", "--dialect", "postgres", "-o", str(out)])
    assert result.exit_code == 0, result.output
    leads = ex.sample_leads()
    load(pg, leads)
    result = pg.execute(out.read_text(encoding="utf-8"))
    assert [d.name for d in result.description] == ["id", "total", "band", "card", "ledger", "exact", "rejection"]
    rows = result.fetchall()
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF) as engine:
        cards = {card.lead_id: card for card in ex.python_cards(engine, leads)}
        ex.assert_same([(r[0], r[1], r[2], r[3], r[5], r[6]) for r in rows], ex.python_lines(engine, leads))
    assert all(r[4] == ex.explain_ledger(cards[r[0]]) for r in rows if r[5])
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # ordered by id, byte by byte


def test_custom_fields_read_as_declared(pg: Any, tmp_path: Path) -> None:
    """Declared fields go through Python's str.strip() (white space beyond ASCII, PostgreSQL's regular
    expressions) and JSON kinds (integers and other numbers tell apart)."""
    from leadscore.model import Company

    pack = tmp_path / "fields.toml"
    pack.write_text(ex.FIELDS_PACK, encoding="utf-8")
    values = [{"seats": " 42\u00a0", "trial": " Yes\u3000", "plan": "pro", "tag": "x"},
              {"seats": "\u2003 7 ", "trial": "no", "plan": 12, "tag": 5},
              {"seats": 12, "trial": True, "plan": "pro ", "tag": True},
              {"seats": "12", "trial": "maybe", "tag": None},
              {"seats": "0012", "trial": 1, "plan": "Pro"},
              {"seats": "-15", "trial": False},
              {}]
    leads = [Lead(f"F-{i}", email="dana@acme.io", title="VP Sales", company=Company(domain="acme.io", country="US"),
                  fields=fields) for i, fields in enumerate(values)]
    rows, want = run_query(pg, leads, ["firr-base", str(pack)])
    ex.assert_same(rows, want, all_exact=True)
    # the white space beyond ASCII is stripped: F-0 reads 42 seats and a trial, F-1 7 seats and none
    assert '"+31 10+ seats"' in want["F-0"] and '"+29 On a trial"' in want["F-0"]
    assert "seats" not in want["F-1"] and "trial" not in want["F-1"]
    # values the query does not read as Python does are marked inexact, as on DuckDB
    rows, odd = run_query(pg, ex.odd_field_leads(), ["firr-base", str(pack)])
    assert {r[0]: r[4] for r in rows} == {f"G-{i}": exact for i, exact in enumerate(ex.ODD_FIELDS.values())}
    ex.assert_same(rows, odd)
