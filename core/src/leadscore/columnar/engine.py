"""Runs a columnar plan with embedded DuckDB over batches of leads and turns the result into cards.

Leads reach DuckDB as two relations (``leads``, ``activities``): from Lead records (this module,
for ``Engine.score``) or decoded straight from JSON Lines files (:mod:`leadscore.columnar.lines`). A lead
whose values lie outside what the SQL reproduces exactly (integers beyond 2**53, NaN and
infinities, naive date-times, non-JSON properties) is scored by the
python engine instead, in its place in the output; so is every lead of a batch that fails in SQL.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
from attrs import evolve
from sqlglot import exp

from leadscore.accounts import account_key
from leadscore.columnar import DEFAULT_MEMORY_LIMIT, Rendered, RenderedRow, stop_if_interrupted
from leadscore.columnar import sql as q
from leadscore.columnar.cards import gate_columns, lookup_tables, statements
from leadscore.columnar.conditions import Unsupported
from leadscore.columnar.plan import CARD_LINE_COLUMNS, LINE_COLUMNS, Plan
from leadscore.rulepack.fields import as_declared
from leadscore.rulepack.schema import CUSTOM_FIELDS
from leadscore.model import Activities, Activity, Lead, Ledger, Rejection, ScoreCard, evidence_place, evidence_text

WHOLE = 2**53
_dumps = orjson.dumps  # custom fields and activity properties as JSON text, which the SQL reads
# Leads that come as records (CSV, Parquet, an activities file, Engine.score) are scored this many at
# a time: each batch's records and cards are held while it runs. 60,000 generated leads as CSV:
# 2,500 took 423-429 MB and 53-55 s of CPU, 10,000 took 797-834 MB and 61-70 s (bench/README.md).
BATCH = 2_500

LEAD_SCHEMA = pa.schema([
    ("k", pa.int64()), ("id", pa.string()), ("email", pa.string()), ("title", pa.string()), ("source", pa.string()),
    ("created_at", pa.int64()), ("account_id", pa.string()), ("c_name", pa.string()), ("c_domain", pa.string()),
    ("c_industry", pa.string()), ("c_employees", pa.int64()), ("c_revenue", pa.float64()), ("c_country", pa.string()),
    ("c_tier", pa.string()), ("fields", pa.string()),
])
ACTIVITY_SCHEMA = pa.schema([
    ("k", pa.int64()), ("pos", pa.int64()), ("type", pa.string()), ("at", pa.int64()), ("props", pa.string()),
    ("ev", pa.string()),
])


TIMES: dict[str, float] = {}


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    """Adds the step's wall time to TIMES (printed at exit with LEADSCORE_COLUMNAR_TIMES=1)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        TIMES[step] = TIMES.get(step, 0.0) + time.perf_counter() - start


def _print_times() -> None:
    total = sum(TIMES.values())
    for step, seconds in sorted(TIMES.items(), key=lambda item: -item[1]):
        sys.stderr.write(f"columnar {step:<16} {seconds:8.2f} s {seconds / total:6.1%}\n")


if os.environ.get("LEADSCORE_COLUMNAR_TIMES"):
    atexit.register(_print_times)


class NotColumnar(Exception):
    """A lead (or value) the SQL does not reproduce exactly: the python engine scores it."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise NotColumnar("text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotColumnar("surrogates") from None
    return value


def _micros(value: Any, as_of_us: int) -> int:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise NotColumnar("datetime")
    us = q.micros(value)
    if abs(as_of_us - us) >= WHOLE:
        raise NotColumnar("far date")
    return us


def _whole(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or abs(value) > WHOLE:
        raise NotColumnar("number")
    return value


def _real(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is int:
        if abs(value) > WHOLE:
            raise NotColumnar("number")
        return float(value)
    if type(value) is not float or not math.isfinite(value):
        raise NotColumnar("number")
    return value


def _json_value(value: Any, depth: int = 0) -> Any:
    if value is None or type(value) in (str, bool):
        if type(value) is str:
            _text(value)
        return value
    if type(value) is int:
        if abs(value) > WHOLE:
            raise NotColumnar("number")
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise NotColumnar("number")
        return value
    if depth < 20 and isinstance(value, (list, tuple)):
        return [_json_value(v, depth + 1) for v in value]
    if depth < 20 and isinstance(value, Mapping):
        return _json_object(value, depth + 1)
    raise NotColumnar("property")


def _json_object(value: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if type(key) is not str:
            raise NotColumnar("key")
        _text(key)
        out[key] = _json_value(item, depth)
    return out


def _fields(fields: Mapping[str, Any], numeric: Mapping[str, str]) -> str | None:
    """A lead's custom fields as the JSON text the SQL reads (None when it has none).

    ``numeric``: the fields declared as a number or int (name -> kind). Such a field holds what the
    python engine reads of it (``as_declared``): the number its text spells (``" 2.5 "`` -> 2.5,
    ``"007"`` -> 7), an int field's whole float as that int; a value it cannot read stays as it is
    (the SQL reads no number from it either). Raises NotColumnar for values the SQL would not read
    exactly: integers beyond 2**53, NaN and infinities, lists and objects."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if type(key) is not str:
            raise NotColumnar("field name")
        _text(key)
        if value is None:
            continue
        kind = numeric.get(key)
        if kind is not None and type(value) in (str, float):
            read = as_declared(value, kind)
            if read is not None:
                value = read
        vtype = type(value)
        if vtype is str:
            _text(value)
        elif vtype is int:
            if abs(value) > WHOLE:
                raise NotColumnar("number")
        elif vtype is float:
            if not math.isfinite(value):
                raise NotColumnar("number")
        elif vtype is not bool:
            raise NotColumnar("field")
        out[key] = value
    return _dumps(out).decode() if out else None


class Rows:
    """Leads and their activities as column lists, ready to become Arrow tables.

    ``numeric``: custom fields a pack declares as a number or int (name -> kind); their text
    values are read as numbers. ``evidence``: each activity's evidence text is made (only the full
    ledger, ``--explain``, reads it; else ``ev`` is empty text, as the JSON Lines decoder leaves it).
    With an activities file kept in DuckDB (leadscore.columnar.activities), a lead's rows of it the
    python reader read come as ``held``: their rows are in :attr:`held` with their row number as ``pos``.
    """

    def __init__(self, numeric: Mapping[str, str] | None = None, evidence: bool = True) -> None:
        self.numeric = numeric or {}
        self.evidence = evidence
        self.leads: dict[str, list[Any]] = {f.name: [] for f in LEAD_SCHEMA}
        self.acts: dict[str, list[Any]] = {f.name: [] for f in ACTIVITY_SCHEMA}
        self.held: dict[str, list[Any]] = {f.name: [] for f in ACTIVITY_SCHEMA}

    def add(self, k: int, lead: Lead, as_of_us: int, held: Sequence[tuple[int, Activity]] = ()) -> None:
        """Append one lead; raises NotColumnar (and appends nothing) for values SQL would not treat exactly."""
        company = lead.company
        row = (k, _text(lead.id), _text(lead.email), _text(lead.title), _text(lead.source),
               None if lead.created_at is None else _micros(lead.created_at, as_of_us), _text(lead.account_id),
               _text(company.name), _text(company.domain), _text(company.industry), _whole(company.employees),
               _real(company.annual_revenue), _text(company.country), _text(company.tier), _fields(lead.fields, self.numeric))
        acts = lead.activities if type(lead.activities) is Activities else Activities.of(lead.activities)
        acts = acts.by_time()
        act_rows = [self._activity(k, pos, acts.types[pos], acts.times[pos], acts.properties(pos), as_of_us)
                    for pos in range(len(acts))]
        held_rows = [self._activity(k, order, act.type, act.at, act.properties, as_of_us) for order, act in held]
        for name, value in zip(self.leads, row):
            self.leads[name].append(value)
        for columns, found in ((self.acts, act_rows), (self.held, held_rows)):
            for act in found:
                for name, value in zip(columns, act):
                    columns[name].append(value)

    def _activity(self, k: int, pos: int, kind: Any, at: Any, props: Mapping[str, Any], as_of_us: int) -> tuple[Any, ...]:
        kind = _text(kind)
        if kind is None:
            raise NotColumnar("activity type")
        evidence = ""
        if self.evidence:
            where = evidence_place(props)
            if where is not None and type(where) is not str:
                raise NotColumnar("evidence")
            evidence = evidence_text(kind, at, where)
        # orjson writes the text the JSON Lines decoder writes (the SQL reads its values either way).
        return (k, pos, kind, _micros(at, as_of_us), _dumps(_json_object(props)).decode() if props else None, evidence)

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return (pa.table(self.leads, schema=LEAD_SCHEMA), pa.table(self.acts, schema=ACTIVITY_SCHEMA))

    def held_table(self) -> pa.Table:
        return pa.table(self.held, schema=ACTIVITY_SCHEMA)


def quiet(con: Any) -> Any:
    """``con`` (a DuckDB connection or cursor) without DuckDB's progress bar, which it draws on standard
    output, where the cards may be going, for a statement of over two seconds (a local setting: each
    cursor is set on its own)."""
    con.execute("SET enable_progress_bar = false")
    return con


def with_file_rows(own: str, held: str, file_rows: str) -> str:
    """The activities of a batch's leads with their rows of an activities file kept in DuckDB: ``own``
    (their own activity rows), ``held`` (their rows of the file the python reader read) and the query
    ``file_rows``, each lead's in the order the python reader gives them: by time, its own first at
    one instant, then the file's in row order."""
    return ('SELECT k, (row_number() OVER (PARTITION BY k ORDER BY "at", src, ord) - 1)::BIGINT AS pos, type, "at", '
            f'props, ev FROM (SELECT k, 0 AS src, pos AS ord, type, "at", props, ev FROM {own} '
            f'UNION ALL SELECT k, 1, pos, type, "at", props, ev FROM {held} '
            f'UNION ALL SELECT k, 1, ord, type, "at", props, ev FROM ({file_rows})) ORDER BY k, pos')


def account_table(scorer: Any, leads: dict[int, Lead], accounts: Any) -> pa.Table:
    names = scorer.plan.account_signals()
    columns: dict[str, list[Any]] = {"k": []}
    for name in names:
        columns[name] = []
        columns[name + "#at"] = []
        columns[name + "#ev"] = []
    for k, lead in leads.items():
        values = accounts.signals_for(account_key(lead)) if accounts is not None else {}
        columns["k"].append(k)
        evidence = getattr(values, "evidence", {})
        default = f"account {values.get('account.id')}"
        for name in names:
            value = values.get(name) if values else None
            columns[name].append(value)
            columns[name + "#at"].append(None)
            columns[name + "#ev"].append(None if value is None else evidence.get(name, default))
    types = {name: pa.string() if name == "account.id" else pa.int64() for name in names}
    return pa.table({name: pa.array(values, type=types.get(name, pa.int64() if name.endswith("#at") or name == "k"
                                                        else pa.string()))
                     for name, values in columns.items()})


def columnar_forms(engine: Any) -> dict[str, Any]:
    """Extractor name -> columnar form, for every extractor that offers one (built-ins and plugins)."""
    forms: dict[str, Any] = {}
    for extractor in engine.extractors:
        form = getattr(extractor, "columnar", None)
        if form is not None:
            forms[extractor.name] = form
    return forms


class ColumnarScorer:
    """Scores batches of leads with one compiled plan on one DuckDB connection.

    :param engine: a python Engine set up for the run (packs, plugins, vocabulary, router).
    :param as_of: the scoring time.
    :raises Unsupported: when part of the run has no columnar form (the caller scores per lead).
    """

    def __init__(self, engine: Any, as_of: datetime, *, explain: bool = True, top: int = 3,
                 memory_limit: str = DEFAULT_MEMORY_LIMIT, values: bool = True, render: str | None = None) -> None:
        import duckdb

        self.engine = engine
        self.as_of = as_of
        self.explain = explain
        self.top = top
        routers = engine.pm.get_columnar_routers() if hasattr(engine.pm, "get_columnar_routers") else None
        if routers is None:
            routers = []
        self.plan = Plan(engine, columnar_forms(engine), routers, as_of)
        self.declared_fields = {name: kind for name, (kind, _) in (engine.vocabulary.get(CUSTOM_FIELDS) or {}).items()}
        self.numeric_fields = {name: kind for name, kind in self.declared_fields.items() if kind in ("int", "number")}
        self.tmp = tempfile.TemporaryDirectory(prefix="leadscore-duckdb-")
        # Past the memory limit DuckDB spills to the temporary directory, so big files stay within it.
        self.memory_limit = memory_limit
        self.con = quiet(duckdb.connect(config={"threads": 2, "memory_limit": memory_limit,
                                                "preserve_insertion_order": True, "temp_directory": self.tmp.name}))
        from leadscore.columnar.render import routable

        # render: the cards come back as the lines `--format jsonl` or `--format csv` writes, or as the
        # rows of `--format parquet` (no records built).
        self.render = render if render and routable(engine.pm) else None
        self.values_needed = not self.render and (values or len(engine.pm.router_functions()) > 1)
        self.variants: dict[bool, dict[str, Any]] = {}
        self.signal_statements: dict[bool, str] = {}
        self.compilers: dict[bool, Any] = {}
        self.same_account: dict[bool, list[Any]] = {}
        self.reads_props = False
        self._prepare(False)  # compiles everything once: raises Unsupported now, not mid-run
        self._check(False)
        if engine.needs_accounts:
            self._prepare(True)
            self._check(True)
        self.last_values: dict[int, dict[str, Any]] = {}
        # How many leads SQL scored and how many went to the python engine (tests and the CLI read it).
        self.stats = {"sql": 0, "python": 0}
        # Per kind of statement ("cards", "accounts"), the most leads (or lines of a file) a part of a
        # batch holds once one ran out of DuckDB's memory and was halved (see run.halve_or_record).
        self.fits: dict[str, int] = {}

    def close(self) -> None:
        self.con.close()
        self.tmp.cleanup()

    # --- compiling the batch statements ---------------------------------------------------------

    def _prepare(self, with_accounts: bool) -> dict[str, Any]:
        """Compile the batch statements once per variant (with or without account signals)."""
        found = self.variants.get(with_accounts)
        if found is not None:
            return found
        plan = self.plan
        steps, final, refs, kinds, compiler, same_account = plan_steps(
            plan, with_accounts=with_accounts, explain=self.explain, top=self.top, render=self.render,
            values_needed=self.values_needed)
        self.same_account[with_accounts] = same_account
        # The signal relation is stored (the result reads it; the account pass, its SQL); the rest is one
        # query of named steps, which DuckDB pipelines instead of storing each step. With the full
        # ledger the lines are stored too, so that the query holds less at once.
        last = "lines" if self.explain else "sig"
        cut = next(i for i, (name, _) in enumerate(steps) if name == last) + 1
        stored, rest = steps[:cut], steps[cut:]
        self.signal_statements[with_accounts] = q.sql(stored[0][1].copy())  # generating SQL may change a tree
        sig_columns = stored[0][1].meta.get("columns") or []
        stored[0] = ("sig", _read_columns(stored[0][1], [select for _, select in [*stored[1:], *rest, ("", final)]]))
        # After each stored step, the tables no later step nor the query reads: dropped there, so a
        # batch holds only what is still to be read (the memory limit applies to them all).
        reads = [{t.name for t in select.find_all(exp.Table)} for _, select in stored]
        final_reads = {t.name for _, select in [*rest, ("", final)] for t in select.find_all(exp.Table)} | {"sig"}
        done_after: list[list[str]] = [[] for _ in stored]
        for i, (name, _) in enumerate(stored):
            if name in final_reads:
                continue
            last_reader = max((j for j in range(i + 1, len(stored)) if name in reads[j]), default=i)
            done_after[last_reader].append(name)
        totals = None
        if not with_accounts and "account.best_lead_score" in self.engine.wanted:
            # Each contact's total before account rules, for the account pass (the steps to ``cards`` only).
            upto = [(name, select.copy()) for name, select in rest[:next(i for i, (name, _) in enumerate(rest)
                                                                        if name == "cards") + 1]]
            totals = q.sql(q.with_steps(upto, q.select(q.col("k"), q.col("total"), copy=False).from_("cards", copy=False)))
        variant = {"steps": [(name, q.sql(select), done) for (name, select), done in zip(stored, done_after)],
                   "query": q.sql(q.with_steps(rest, final)), "kinds": kinds, "totals": totals, "sig_columns": sig_columns}
        # Whether any statement reads activity properties (a columnar form reads them by this name).
        self.reads_props = self.reads_props or any("props" in text for _, text, _ in variant["steps"]) or \
            "props" in variant["query"]
        if not self.variants:
            for name, table in constant_tables(plan, self.as_of, render=self.render).items():
                self.con.register(name, table)
        plan.udfs.register(self.con)
        self.compilers[with_accounts] = compiler
        self.variants[with_accounts] = variant
        return variant

    def _check(self, with_accounts: bool) -> None:
        """Run the plan once on no leads: a statement DuckDB cannot bind is found now, and the run
        goes to the python engine instead of failing half-way."""
        empty = Rows().tables()
        accounts = None
        if with_accounts:
            accounts = account_table(self, {}, None)
        try:
            self.run(*empty, accounts)
        except Exception as err:  # noqa: BLE001
            stop_if_interrupted(err)
            raise Unsupported(f"the plan does not run in DuckDB: {err}") from err

    def run(self, leads: pa.Table, acts: pa.Table, accounts: pa.Table | str | None, file_acts: Any = None,
            held: pa.Table | None = None) -> list[dict[str, Any]]:
        """Score one batch of Arrow rows; one dict per lead with what its card holds (combo -1: no pack).
        The batch's relations are as :meth:`load` makes them."""
        self.load(leads, acts, accounts, file_acts, held)
        return self.run_views(with_accounts=accounts is not None)

    def load(self, leads: pa.Table, acts: pa.Table, accounts: pa.Table | str | None = None, file_acts: Any = None,
             held: pa.Table | None = None) -> None:
        """The relations a batch's statements read: ``b_leads``, ``b_acts`` and with ``accounts`` (its
        rows, or a select of them), ``b_acc``.

        ``file_acts`` (a leadscore.columnar.activities.SqlActivityTable): the leads' rows of an
        activities file kept in DuckDB join their own activities (and ``held``, the rows of it the
        python reader read), each lead's in the order the python reader gives them: by time, its own
        first at one instant, then the file's in row order."""
        con = self.con
        con.register("b_leads", leads)
        if file_acts is None:
            con.register("b_acts", acts)
        else:
            con.register("b_own", acts)
            con.register("b_held", held if held is not None else acts.slice(0, 0))
            con.unregister("b_acts")
            with timed("file activities"):
                con.execute(f"CREATE OR REPLACE TEMP TABLE b_acts AS {with_file_rows('b_own', 'b_held', file_acts.file_rows())}")
        if isinstance(accounts, str):
            con.execute(f"CREATE OR REPLACE TEMP VIEW b_acc AS {accounts}")
        elif accounts is not None:
            con.register("b_acc", accounts)

    def signal_statement(self, *, with_accounts: bool) -> str:
        """The SQL of the batch's whole signal relation over ``b_leads``/``b_acts`` (the stored ``sig``
        step keeps only the columns the plan reads)."""
        self._prepare(with_accounts)
        return self.signal_statements[with_accounts]

    def signals_read_by(self, reader: Any) -> str:
        """The SQL of a signal relation over ``b_leads``/``b_acts`` (no account signals) with only the
        signals ``reader`` (a select over ``sig``) names, each extractor asked for those alone: the
        account pass reads five or six signals of each contact, and DuckDB binds and plans every
        extractor's SQL it is given once a block, used or not (with every installed pack, most of
        that statement's cost; bench/README.md, thirty-seventh round). The whole signal statement
        when ``reader`` names more of ``sig`` than the extractors' signals and the patterns (the
        combination, the gates)."""
        whole = self.signal_statement(with_accounts=False)
        ctx = self.plan.context("b_leads", "b_acts")
        patterns = self.plan.pattern_relation("b_acts")
        pattern_names = set(patterns.named_selects) - {"k"} if patterns is not None else set()
        named = {column.name for column in reader.find_all(exp.Column)} & set(self.variants[False]["sig_columns"])
        if named & set(SIG_OWN_COLUMNS):
            return whole
        signals = named - pattern_names
        narrow, _ = self.plan.signal_relation(evolve(ctx, wanted=frozenset(signals - {"k"})), None)
        if not signals <= set(narrow.named_selects):
            return whole
        if named & pattern_names:
            narrow = with_patterns(narrow, patterns)[0]
        self.plan.udfs.register(self.con)
        return q.sql(narrow)

    def run_views(self, *, with_accounts: bool | None = None,
                  then: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """Score the batch behind the relations ``b_leads``, ``b_acts`` (and ``b_acc``). ``then`` is
        called once the stored steps are made, before the query."""
        if with_accounts is None:
            with_accounts = self.engine.needs_accounts
        variant = self._prepare(with_accounts)
        self._kinds = variant["kinds"]
        con = self.con
        self._stored(variant)
        if then is not None:
            then()
        profile = os.environ.get("LEADSCORE_COLUMNAR_PROFILE")
        if profile:  # DuckDB's operator timings of the batch's query, as JSON (the last batch's stays)
            con.execute("PRAGMA enable_profiling='json'")
            con.execute(f"PRAGMA profiling_output={q.sql(q.lit(profile))}")
        # The query is parsed once and kept as a prepared statement. DuckDB (2.0) still binds and
        # plans it again at every EXECUTE (duckdb/duckdb#17237), 60-80 ms a batch with firr-base, so
        # what this saves is the parsing; a batch's planning is paid once per batch whatever is done
        # here, which is part of why batches are not made smaller (bench/README.md, thirty-seventh round).
        prepared = f"ls_query_{int(with_accounts)}"
        if not variant.get("prepared"):
            con.execute(f"PREPARE {prepared} AS {variant['query']}")
            variant["prepared"] = True
        with timed("plan"):
            if self.render == "parquet":
                batch = con.sql(f"EXECUTE {prepared}").to_arrow_table()
                if not self.explain:
                    import pyarrow.compute as pc

                    # In the leads' order, as the writer takes them: a block's rows are then one slice of
                    # the table, where the query's order made a slice of a few rows each (200,000 leads:
                    # 53 s -> 38 s). With the ledgers' text the copy cost 60-90 MB more at the peak for 2%.
                    batch = batch.take(pc.sort_indices(batch.column("k")))
                found: list[dict[str, Any]] = [{"k": k, "batch": batch, "index": i}
                                               for i, k in enumerate(batch.column("k").to_pylist())]
            elif ledger_apart(self.render, self.explain):
                from leadscore.columnar.render import joined_rows

                found = joined_rows(con.sql(f"EXECUTE {prepared}").to_arrow_reader(JOINED_BATCH_ROWS))
            elif self.render:
                found = [{"k": k, "text": text} for k, text in con.execute(f"EXECUTE {prepared}").fetchall()]
            else:
                found = con.sql(f"EXECUTE {prepared}").to_arrow_table().to_pylist()
        if profile:
            con.execute("PRAGMA disable_profiling")
        missing = con.execute("SELECT k FROM sig WHERE combo < 0").fetchall()
        return found + [{"k": k, "combo": -1} for (k,) in missing]

    def _stored(self, variant: dict[str, Any]) -> None:
        """The batch's stored steps (``sig``, and with the full ledger its lines), each table dropped
        once no later step reads it."""
        for name, statement, done in variant["steps"]:
            with timed(name):
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {statement}")
                for table in done:
                    self.con.execute(f"DROP TABLE {table}")

    def contact_totals(self) -> None:
        """The table ``cards`` (``k``, ``total``) of the batch's leads' totals before account rules
        (which the account pass reads for ``account.best_lead_score``), and its stored steps."""
        variant = self._prepare(False)
        self._stored(variant)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE cards AS {variant['totals']}")

    def drop_batch(self) -> None:
        """Drop the tables the last batch's steps stored (``sig``; with ``--explain`` its lines too):
        the next batch would replace them, but dropped first they are not held while it is read."""
        for variant in self.variants.values():
            for name, _, _ in variant["steps"]:
                self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self.con.execute("DROP TABLE IF EXISTS cards")  # see contact_totals

    def cards(self, rows: Sequence[dict[str, Any]], leads: Mapping[int, Lead]) -> dict[int, ScoreCard | Rejection]:
        """ScoreCards (or the no-pack rejection) for a batch's result rows."""
        with timed("cards"):
            return self._cards(rows, leads)

    def _cards(self, rows: Sequence[dict[str, Any]], leads: Mapping[int, Lead]) -> dict[int, ScoreCard | Rejection]:
        out: dict[int, ScoreCard | Rejection] = {}
        self.last_values = {}
        combos = {c.index: c.composed for c in self.plan.combos}
        router = self.engine.router
        for row in rows:
            k = row["k"]
            lead = leads[k]
            if "text" in row:
                out[k] = Rendered(row["text"], lead.id)
                continue
            if "batch" in row:
                out[k] = RenderedRow(row["batch"], row["index"], lead.id)
                continue
            if row["combo"] < 0:
                out[k] = Rejection(f"lead {lead.id}", "could not be scored: LookupError: no rulepack applies to this "
                                   "lead (every installed pack has an applies_when it does not meet); install or pass "
                                   "a pack without applies_when", lead.id)
                continue
            composed = combos[row["combo"]]
            if "ledger" not in row:
                # Without --explain only the top reasons are read: the card carries those lines alone.
                raw = [(r["rule_id"], "", r["points"], r["reason"], "", "rule", 0, "none", 1.0, None, None, "")
                       for r in row["reasons"] or ()]
            ledger_rows = row.get("ledger") or []
            if "ledger" in row:
                raw = [(line["rule_id"], line["category"], line["points"], line["reason"], line["pack"], line["kind"],
                    line["raw"], line["decay"], line["factor"], line["signal"],
                    None if line["observed_at"] is None else _datetime(line["observed_at"]), line["evidence"])
                   for line in ledger_rows]
            subscores = tuple((s["category"], s["points"]) for s in row["subscores"] or ())
            card = ScoreCard(lead.id, self.as_of, row["total"], subscores, row["band"], row["points_band"],
                             tuple(row["gate_notes"] or ()), None, Ledger(raw), composed.packs, lead.account_id)
            values = self.last_values[k] = self._values(row["sig"], lead) if row.get("sig") else {}
            route = router(card, lead, {"routing": composed.routing, "packs": composed.key, "signals": values})
            if route is not None:
                card = ScoreCard(lead.id, self.as_of, card.total, subscores, card.band, card.points_band,
                                 card.gate_notes, route, card.ledger, composed.packs, lead.account_id)
            out[k] = card
        return out

    def _values(self, sig: Mapping[str, Any], lead: Any) -> dict[str, Any]:
        """The lead's signal values as the python engine holds them (for routers and the account roll-up).

        A custom field's value is the lead's own (a DOUBLE in SQL is 3 or 3.0 to Python)."""
        values: dict[str, Any] = {}
        kinds = self._kinds
        fields = None  # the lead's custom fields, once one is read (a scan's stub parses them)
        for name, value in sig.items():
            if value is None or name.endswith(("#at", "#ev")) or name not in kinds:
                continue
            kind = kinds[name]
            if name.startswith("fields."):
                if fields is None:
                    fields = lead.fields
                value = self._field(fields, name[len("fields."):])
            elif kind == "dt":
                value = _datetime(value)
            elif kind == "any":
                value = {"str": value["s"], "bool": value["b"], "dt": None if value["t"] is None else _datetime(value["t"])
                         }.get(value["k"], value["n"])
                if isinstance(value, float) and value.is_integer():
                    value = int(value)  # an extractor's any value: whole numbers are ints
            values[name] = value
        return values

    def _field(self, fields: Mapping[str, Any], key: str) -> Any:
        """The value of the custom field ``key`` as the python engine's crm extractor gives it."""
        value = fields.get(key)
        kind = self.declared_fields.get(key)
        return value if kind is None or value is None else as_declared(value, kind)


# Rows of text a batch when the cards' ledgers are joined (see ledger_apart): about 4 MB of generated
# leads' ledger lines.
JOINED_BATCH_ROWS = 16_384


def ledger_apart(render: str | None, explain: bool) -> bool:
    """Whether the cards' lines come with their ledgers as rows of text to join (render.ledger_rows):
    JSON Lines and CSV with ``--explain``. A Parquet row's ledger cell is still made whole in SQL."""
    return explain and render in ("jsonl", "csv")


# The stored signal step's columns after the relation's and the patterns': what composition adds.
SIG_OWN_COLUMNS = ("mask", "combo", "gates")


def plan_steps(plan: Plan, *, with_accounts: bool, explain: bool, top: int, render: str | None,
               values_needed: bool, ledger_in_lines: bool | None = None,
               ) -> tuple[list[tuple[str, Any]], Any, dict[str, Any], dict[str, str], Any, list[Any]]:
    """The named steps of a batch over ``b_leads``/``b_acts`` (and ``b_acc``) and the final select:
    (steps, final, signal refs, signal kinds read back, condition compiler, same_account rules).

    With ``render`` (jsonl, csv or parquet), each card's line in that format (its row, for parquet) is
    made in SQL, with its ledger when ``ledger_in_lines`` (by default: with ``explain``)."""
    ctx = plan.context("b_leads", "b_acts")
    relation, refs = plan.signal_relation(ctx, "b_acc" if with_accounts else None)
    compiler = plan.compiler(refs)
    # Conditions and patterns are compiled against the signal columns of `sig`.
    lines = plan.rule_lines(compiler, refs, "sig", "b_acts", explain)
    matched = plan.matched if any(rule.on for c in plan.combos for rule in c.composed.rules) else None
    mask = plan.mask_expression(compiler)
    gates = gate_columns(plan, compiler)
    same_account = plan.compile_same_account(compiler)
    base, pattern_columns = with_patterns(relation, plan.pattern_relation("b_acts"))
    with_mask = base.select(mask.as_("mask", copy=False))
    sig = q.select(exp_star(), plan.combo_of(q.col("mask")).as_("combo", copy=False)).from_(with_mask.subquery("m", copy=False))
    # Without the full ledger, the lines keep only the columns the cards read.
    columns = LINE_COLUMNS if explain else CARD_LINE_COLUMNS
    if lines:
        union = lines[0]
        for part in lines[1:]:
            union = union_all(union, part)
        body = q.select(*[q.col(c) for c in columns], copy=False).from_(union.subquery("u", copy=False))
    else:
        types = dict(zip(LINE_COLUMNS, _LINE_TYPES))
        body = q.select(*[q.cast(exp_null(), types[c]).as_(c, copy=False) for c in columns], copy=False).where(exp_false(), copy=False)
    kinds = {name: ref.kind for name, ref in refs.items()}
    # Routers other than the built-in one, and the account roll-up, read the lead's signal values.
    if not values_needed:
        kinds = {}
    sig_struct = q.struct(**{name: q.col(name, "s") for name in kinds}) if kinds else exp_null()
    result = (q.select(exp_table_star("c"), sig_struct.as_("sig", copy=False))
              .from_(q.table("cards", "c"), copy=False).join(q.table("sig", "s"), on=q.col("k", "c").eq(q.col("k", "s")), copy=False))
    # The signal columns and the gates read from them, one step: the wide table is stored once.
    with_gates = q.select(exp_star(), gates.as_("gates", copy=False)).from_(sig.subquery("sig0", copy=False), copy=False)
    # The relation's columns by name (its selects are stars over subqueries): see ColumnarScorer._prepare.
    with_gates.meta["columns"] = [*relation.named_selects, *(c.name for c in pattern_columns), *SIG_OWN_COLUMNS]
    steps: list[tuple[str, Any]] = [("sig", with_gates)]
    if matched is not None:
        steps.append(("matches", matched))
    steps.append(("lines", body))
    apart = ledger_apart(render, explain) and ledger_in_lines is None
    steps += statements(plan, top, explain, ledger_apart=apart)
    plan.refs = refs
    if render:
        from leadscore.columnar.render import csv_line_statement, ledger_rows, line_statement, parquet_row_statement

        routers = [fn.columnar for fn in plan.engine.pm.router_functions() if getattr(fn, "columnar", None)]
        ledger = (explain if ledger_in_lines is None else ledger_in_lines) and not apart
        if render == "parquet":
            made = parquet_row_statement(plan, routers, plan.engine.categories(), ledger)
        elif render == "csv":
            made = csv_line_statement(plan, routers, plan.engine.categories(), ledger, apart=apart)
        else:
            made = line_statement(plan, routers, ledger, apart=apart)
        steps.append(("lines_out", made))
    final = result
    if apart:
        final = ledger_rows(plan, render)
    elif render:
        final = (q.select(exp_star(), copy=False) if render == "parquet" else
                 q.select(q.col("k"), q.col("text"), copy=False)).from_("lines_out", copy=False)
    return steps, final, refs, kinds, compiler, same_account


def with_patterns(relation: Any, patterns: Any) -> tuple[Any, list[Any]]:
    """``relation`` (the signal relation) with each lead's pattern columns (``patterns``: the plan's
    pattern relation, or None), and those columns."""
    inner = relation.subquery("sg", copy=False)
    if patterns is None:
        return q.select(exp_star(), copy=False).from_(inner, copy=False), []
    # The pattern columns by name: a second `k` would be refused by Spark when a step becomes a table.
    pattern_columns = [q.col(name, "pt") for name in patterns.named_selects if name != "k"]
    base = (q.select(exp_table_star("sg"), *pattern_columns, copy=False).from_(inner, copy=False)
            .join(patterns.subquery("pt", copy=False), on=q.col("k", "sg").eq(q.col("k", "pt")), join_type="left",
                  copy=False))
    return base, pattern_columns


def _read_columns(sig: Any, readers: list[Any]) -> Any:
    """``sig`` (the signal relation's select) narrowed to the columns some select of ``readers``
    names: without ``--explain`` no evidence text is read, nor any signal no rule of the run reads,
    and DuckDB does not compute what the outer select leaves out. Unchanged when a reader selects
    a star over ``sig`` (every column), or when the columns are not known."""
    from sqlglot import exp

    columns = sig.meta.get("columns")
    if not columns:
        return sig
    for reader in readers:
        for select in reader.find_all(exp.Select):
            over_sig = {table.alias_or_name for table in select.find_all(exp.Table) if table.name == "sig"}
            for star in select.expressions:
                every = isinstance(star, exp.Star) and bool(over_sig)  # SELECT * FROM sig ...
                every = every or (isinstance(star, exp.Column) and isinstance(star.this, exp.Star)
                                  and star.table in over_sig)  # SELECT s.* FROM sig AS s ...
                if every:
                    return sig
    named = {column.name for reader in readers for column in reader.find_all(exp.Column)}
    kept = [q.col(name) for name in columns if name in named or name in ("k", "combo")]
    return q.select(*kept, copy=False).from_(sig.subquery("sig_all", copy=False), copy=False)


def constant_tables(plan: Plan, as_of: datetime, *, render: str | None) -> dict[str, pa.Table]:
    """The tables of per-combination constants the plan's steps join, by name (``render``: the format
    the cards' lines are made in, if any)."""
    tables = lookup_tables(plan)
    if render:
        from leadscore.columnar.render import constants, route_tables

        tables["ls_routes"] = route_tables(plan, render)
        tables["ls_render"] = constants(plan, as_of, render)
    tables["ls_rule_types"] = pa.table(plan.rule_constants(), schema=pa.schema([
        ("combo", pa.int64()), ("s1", pa.int64()), ("type", pa.string()), ("rule_id", pa.string()),
        ("category", pa.string()), ("reason", pa.string()), ("pack", pa.string()), ("raw", pa.int64()),
        ("decay", pa.string()), ("limit_text", pa.string()), ("day_limit", pa.int64()), ("keep", pa.int64()),
        ("daily", pa.bool_()), ("decay_id", pa.int64())]))
    return tables


_LINE_TYPES = ("BIGINT", "BIGINT", "BIGINT", "VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT",
               "VARCHAR", "DOUBLE", "VARCHAR", "BIGINT", "VARCHAR")


def _datetime(us: int) -> datetime:
    return q.EPOCH + timedelta(microseconds=us)


def exp_star() -> Any:
    from sqlglot import exp

    return exp.Star()


def exp_table_star(alias: str) -> Any:
    from sqlglot import exp

    return exp.Column(this=exp.Star(), table=exp.to_identifier(alias))


def exp_null() -> Any:
    from sqlglot import exp

    return exp.null()


def exp_false() -> Any:
    from sqlglot import exp

    return exp.false()


def union_all(a: Any, b: Any) -> Any:
    from sqlglot import exp

    return exp.union(a, b, distinct=False, copy=False)


__all__ = ["BATCH", "ColumnarScorer", "NotColumnar", "Rows", "Unsupported", "columnar_forms"]
