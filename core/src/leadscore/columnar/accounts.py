"""The account pass in SQL: every contact's summary values, grouped by account, as ``account.*`` signals.

The same numbers as :class:`leadscore.accounts.AccountIndex`: contacts, engaged contacts (engagement
beyond email in 90 days), senior engaged contacts, distinct functions engaged, high-intent actions
in 30 days, the best contact total before account rules (when a rulepack uses it) and, per
``same_account`` condition, the first N distinct contacts (in input order) that meet its ``where``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from functools import partial
from itertools import islice
from typing import Any

from sqlglot import exp

from leadscore.accounts import SENIOR, AccountSignals, AccountSummary, Contact, account_key, add_contact, person_key
from leadscore.columnar import sql as q
from leadscore.columnar.engine import BATCH, Rows
from leadscore.columnar.files import ParquetFolder, insert_rows
from leadscore.columnar.run import batches, columnar_leads, in_parts
from leadscore.engine import seen_at
from leadscore.taxonomy.email import classify_address
from leadscore.model import Lead, Rejection, ScoreCard


# The account signals counted in ``account_sum``, and its column each is read from.
_COUNTED = (("account.contacts", "contacts"), ("account.engaged_contacts", "engaged"),
            ("account.senior_engaged_contacts", "senior_engaged"), ("account.functions_engaged", "functions"),
            ("account.high_intent_30d", "high"))


class AccountSql:
    """The account pass as selects over named relations: each contact (from ``sig`` and ``b_leads``, and
    ``cards`` when a pack reads the best contact's total) into ``contacts``; per account its summary
    (``account_sum``) and each ``same_account`` count (``same_<i>``); and every contact's ``account.*``
    signal row. :class:`AccountPass` runs them block by block; ``leadscore sql`` puts them in its query.

    ``domain(email)`` is the account key of a lead without account_id (its business email domain);
    ``person(email, id)`` is person_key for the addresses :func:`person_sql` leaves to Python (None:
    every address in SQL, trimmed of spaces, as the exported query does).
    """

    def __init__(self, engine: Any, domain: Any, person: Any) -> None:
        self.signals = [spec.signal for spec in engine.same_account]
        self.caps = {spec.signal: spec.cap for spec in engine.same_account}
        self.need_score = "account.best_lead_score" in engine.wanted
        self.domain, self.person = domain, person

    def contacts(self, matched: list[exp.Expression]) -> exp.Select:
        """One row per lead with an account key: what it adds to its account (``matched``: each
        ``same_account`` condition's ``where``, compiled on ``sig``)."""
        sig = lambda name: q.col(name, "s")  # noqa: E731
        account = q.fn("nullif", q.col("account_id", "l"), q.lit(""))
        key = q.case([(q.not_null(account), account)], self.domain(q.col("email", "l")))
        engaged = exp.GTE(this=q.coalesce(sig("intent.beyond_email.count_90d"), q.lit(0)), expression=q.lit(1))
        total = q.col("total", "c") if self.need_score else q.cast(exp.null(), "BIGINT")
        select = (q.select(q.col("k", "s"), key.as_("key", copy=False), q.col("id", "l"),
                           person_sql(q.col("email", "l"), q.col("id", "l"), self.person).as_("person", copy=False),
                           engaged.as_("engaged", copy=False),
                           # A lead without a seniority is not senior (Python's ``None in SENIOR``), not unknown.
                           q.coalesce(q.in_(sig("title.seniority"), SENIOR), exp.false()).as_("senior", copy=False),
                           sig("title.function").as_("function", copy=False),
                           q.cast(exp.Add(this=q.coalesce(sig("intent.high.count_30d"), q.lit(0)),
                                          expression=q.coalesce(sig("intent.readiness.count_30d"), q.lit(0))),
                                  "BIGINT").as_("high", copy=False),
                           total.as_("total", copy=False), *[m.as_(f"m{i}", copy=False) for i, m in enumerate(matched)], copy=False)
                  .from_(q.table("sig", "s"), copy=False).join(q.table("b_leads", "l"), on=q.col("k", "l").eq(q.col("k", "s")), copy=False))
        if self.need_score:
            select = select.join(q.table("cards", "c"), on=q.col("k", "c").eq(q.col("k", "s")), join_type="left", copy=False)
        return select.where(q.not_null(key), copy=False)

    def summary(self, contacts: str = "contacts") -> exp.Select:
        """Per account of ``contacts``: its people (leads counted by person_key), engaged and senior
        engaged people, distinct functions engaged, the sum of each person's largest high-intent count,
        best total."""
        people = (q.select(q.col("key"), q.col("person"), q.fn("bool_or", q.col("engaged")).as_("e", copy=False),
                           q.fn("bool_or", q.and_(q.col("engaged"), q.col("senior"))).as_("se", copy=False),
                           q.fn("max", q.col("high")).as_("h", copy=False))
                  .from_(contacts, copy=False).group_by(q.col("key"), q.col("person"), copy=False))
        per_person = (q.select(q.col("key"), exp.Count(this=exp.Star()).as_("contacts", copy=False),
                               q.fn("count_if", q.col("e")).as_("engaged", copy=False),
                               q.fn("count_if", q.col("se")).as_("senior_engaged", copy=False),
                               q.fn("sum", q.col("h")).as_("high", copy=False))
                      .from_(people.subquery("pp", copy=False)).group_by(q.col("key"), copy=False))
        functions = exp.Filter(this=exp.Count(this=exp.Distinct(expressions=[q.col("function")])),
                               expression=exp.Where(this=_function_engaged()))
        per_lead = (q.select(q.col("key"), functions.as_("functions", copy=False),
                             q.fn("max", q.col("total")).as_("best", copy=False))
                    .from_(contacts, copy=False).group_by(q.col("key"), copy=False))
        p, f = lambda c: q.col(c, "p"), lambda c: q.col(c, "f")  # noqa: E731
        return (q.select(p("key"), p("contacts"), p("engaged"), p("senior_engaged"), f("functions"),
                         q.cast(p("high"), "BIGINT").as_("high", copy=False), f("best"))
                .from_(per_person.subquery("p", copy=False))
                .join(per_lead.subquery("f", copy=False), on=p("key").eq(f("key")), copy=False))

    def extras(self, contacts: str = "contacts") -> exp.Select:
        """Per account of ``contacts`` what its roll-up card shows beyond the signals: the functions
        engaged by name (sorted), and the lead with the best total before account rules (the smallest
        id among equals), when a pack reads that total."""
        names = exp.Filter(this=q.fn("list", exp.Distinct(expressions=[q.col("function")])),
                           expression=exp.Where(this=_function_engaged()))
        # The greatest total, then the smallest id: the least (-total, id).
        order = q.fn("struct_pack", exp.PropertyEQ(this=q.ident("t"), expression=exp.Neg(this=q.col("total"))),
                     exp.PropertyEQ(this=q.ident("i"), expression=q.col("id")))
        best = exp.Filter(this=q.fn("arg_min", q.col("id"), order), expression=exp.Where(this=q.not_null(q.col("total"))))
        functions = q.fn("list_sort", q.coalesce(names, exp.Array(expressions=[])))
        return (q.select(q.col("key"), functions.as_("functions", copy=False), best.as_("best_lead", copy=False))
                .from_(contacts, copy=False).group_by(q.col("key"), copy=False))

    def same(self, index: int, contacts: str = "contacts") -> exp.Select:
        """Per account of ``contacts``: the first ``cap`` distinct people meeting the ``where`` (in the
        input order of their first matching lead), counted and named by that lead's id."""
        cap = self.caps[self.signals[index]]
        firsts = (q.select(q.col("key"), q.col("person"), q.fn("min", q.col("k")).as_("first", copy=False),
                           q.fn("arg_min", q.col("id"), q.col("k")).as_("id", copy=False)).from_(contacts, copy=False)
                  .where(q.col(f"m{index}"), copy=False).group_by(q.col("key"), q.col("person"), copy=False))
        # The first `cap` people by their first lead: an aggregate that keeps `cap` values per account,
        # which DuckDB can spill, where ranking every person in a window ran out of memory at 10M leads.
        first_ids = q.fn("arg_min", q.col("id"), q.col("first"), q.lit(cap))
        ids = q.fn("list_sort", q.fn("list_distinct", first_ids))
        return (q.select(q.col("key"), q.cast(exp.ArraySize(this=ids.copy()), "BIGINT").as_("n", copy=False),
                         ids.as_("ids", copy=False))
                .from_(firsts.subquery("f", copy=False)).group_by(q.col("key"), copy=False))

    def names(self) -> list[str]:
        """The ``account.*`` signals, in :meth:`by_account`'s column order."""
        best = ["account.best_lead_score"] if self.need_score else []
        return ["account.id", *(name for name, _ in _COUNTED), *best, *self.signals]

    def by_account(self) -> exp.Select:
        """Each account's ``account.*`` signal values by ``key``, with the evidence text of each
        ``same_account`` count (the others' evidence is the key's, made by :meth:`rows`)."""
        key = q.col("key", "a")
        a = lambda c: q.col(c, "a")  # noqa: E731
        cols: list[exp.Expression] = [key.as_("key", copy=False), key.as_("account.id", quoted=True, copy=False)]
        for name, part in _COUNTED:
            cols.append(q.cast(a(part), "BIGINT").as_(name, quoted=True, copy=False))
        if self.need_score:
            cols.append(a("best").as_("account.best_lead_score", quoted=True, copy=False))
        select = q.select(copy=False).from_(q.table("account_sum", "a"), copy=False)
        for index, name in enumerate(self.signals):
            alias = f"x{index}"
            n = q.cast(q.coalesce(q.col("n", alias), q.lit(0)), "BIGINT")
            shown = q.concat(q.fn("array_to_string", q.fn("list_slice", q.col("ids", alias), q.lit(1), q.lit(5)), q.lit(", ")),
                             q.case([(exp.GT(this=n, expression=q.lit(5)), q.lit(", ..."))], q.lit("")))
            text = q.concat(q.cast(n, "VARCHAR"), q.case([(n.eq(q.lit(1)), q.lit(" contact"))], q.lit(" contacts")),
                            q.lit(" of account "), key,
                            q.case([(exp.GT(this=n, expression=q.lit(0)), q.concat(q.lit(": "), shown))], q.lit("")))
            cols += [n.as_(name, quoted=True, copy=False), text.as_(f"{name}#ev", quoted=True, copy=False)]
            select = select.join(q.table(f"same_{index}", alias), on=q.col("key", alias).eq(key), join_type="left", copy=False)
        return select.select(*cols, copy=False)

    def rows(self, by_account: str | exp.Expression, contacts: str | None = "contacts") -> exp.Select:
        """Each contact's ``account.*`` signal columns with their ``#at`` and ``#ev``, by ``k``: its
        account's row of ``by_account`` (:meth:`by_account`'s relation, a name or a subquery;
        ``contacts`` holds each contact's ``k`` and ``key``; None: ``by_account`` has a row a
        contact, with its ``k``, as :meth:`by_contact` makes)."""
        r = lambda c: q.col(c, "r")  # noqa: E731
        ev = q.concat(q.lit("account "), r("key"))
        cols: list[exp.Expression] = [q.col("k", "c" if contacts is not None else "r")]
        for name in self.names():
            if name in self.signals:
                evidence = r(f"{name}#ev")
            elif name == "account.best_lead_score":
                evidence = q.case([(q.not_null(r(name)), ev)])
            else:
                evidence = ev
            cols += [r(name), q.cast(exp.null(), "BIGINT").as_(f"{name}#at", quoted=True, copy=False),
                     evidence.as_(f"{name}#ev", quoted=True, copy=False)]
        accounts = q.table(by_account, "r") if isinstance(by_account, str) else by_account.subquery("r", copy=False)
        if contacts is None:
            return q.select(*cols, copy=False).from_(accounts, copy=False)
        return (q.select(*cols, copy=False).from_(q.table(contacts, "c"), copy=False)
                .join(accounts, on=r("key").eq(q.col("key", "c")), copy=False))

    def by_contact(self, by_account: str, contacts: str = "contacts", lines: tuple[int, int] | None = None) -> exp.Select:
        """Each contact's ``k`` and its account's row of ``by_account`` (by ``key``), in line order:
        the scoring pass reads a block's rows by a range of ``k``, which skips all but the row groups
        holding it (see :meth:`block_rows`). ``lines``: only the contacts on those lines (first, last)."""
        select = (q.select(q.col("k", "c"), exp.Column(this=exp.Star(), table=q.ident("r")), copy=False)
                  .from_(q.table(contacts, "c"), copy=False)
                  .join(q.table(by_account, "r"), on=q.col("key", "r").eq(q.col("key", "c")), copy=False))
        if lines is not None:
            select = select.where(exp.Between(this=q.col("k", "c"), low=q.lit(lines[0]), high=q.lit(lines[1])), copy=False)
        return select.order_by(q.col("k", "c"), copy=False)

    def block_rows(self, by_contact: str, lines: tuple[int, int]) -> exp.Select:
        """:meth:`rows` of the contacts on lines ``lines`` (first, last), from ``by_contact``
        (:meth:`by_contact`'s relation: a table, or ``read_parquet(...)`` of a file)."""
        between = exp.Between(this=q.col("k"), low=q.lit(lines[0]), high=q.lit(lines[1]))
        return self.rows(q.select(exp.Star(), copy=False).from_(by_contact, copy=False).where(between, copy=False), None)


# DuckDB's memory limit while the account pass reads the file: the contacts are written once and read
# once, by the sums at the end, so they can wait on disk while each block is decoded beside them
# (3 million leads with every pack: 423 MiB peak instead of 486, in no more time). The sums run under
# the scorer's own limit: at 10 million contacts they do not fit in this one.
ACCOUNT_PASS_MEMORY = "120MB"


# Each contact's account row is written in line order (an external sort DuckDB spills as it
# needs) under this limit, not the scorer's: the sort would otherwise take all of the scorer's
# limit on top of what the process holds after the pass (should it not fit, it runs again under
# the scorer's: AccountPass._sorted_rows). The file's row groups are about a block
# each, so a block's read skips the others.
CONTACT_ACCOUNTS_MEMORY = "120MB"
CONTACT_ACCOUNTS_ROW_GROUP = 16_384

# The sums run a part of the accounts at a time (about PART_CONTACTS contacts a part), each part under
# this limit, not the scorer's, and the sort above a range of lines at a time, as many ranges as
# parts. At ten million contacts of 3.3 million accounts the sums in one part took all of the scorer's
# 200 MB on top of what the process held after the pass (a peak about 220 MiB above it), and the sort
# in one range did not fit in its 120 MB; in five parts and ranges, about 135 MiB above it, in about
# the same time (bench/README.md, thirty-fifth round).
PART_CONTACTS = 2_000_000
ACCOUNT_SUMS_MEMORY = "120MB"


def parts_of(contacts: int) -> int:
    """How many parts the sums of ``contacts`` contacts run in: about PART_CONTACTS a part, at least one."""
    return max(1, -(-contacts // PART_CONTACTS))


class AccountPass:
    """Built block by block (:meth:`add_sql` and :meth:`add_python` after each block is read, inside
    :meth:`reading`), then :meth:`finish`.

    Each block's contacts are written to a Parquet file of their own in a folder under the scorer's
    temporary folder, and the sums read the folder: DuckDB's temporary storage then does not grow
    with the file (297 MiB spilled by the end of ten million leads, with the lead ids), and the sums
    take the same time as from a table (bench/README.md, fourteenth round). The few contacts counted the
    python way (odd lines, a block the SQL could not run) go to the table ``python_contacts``."""

    def __init__(self, engine: Any, scorer: Any, when: datetime, roll_up: bool = False) -> None:
        self.engine, self.scorer, self.when, self.roll_up = engine, scorer, when, roll_up
        domain = scorer.plan.udfs.add("ls_account_domain", _email_domain, ("VARCHAR",), "VARCHAR")
        person = scorer.plan.udfs.add("ls_person", _person, ("VARCHAR", "VARCHAR"), "VARCHAR", nulls=True)
        self.sql = AccountSql(engine, domain, person)
        self.signals, self.need_score = self.sql.signals, self.sql.need_score
        con = scorer.con
        self.columns = [("k", "BIGINT"), ("key", "VARCHAR"), ("id", "VARCHAR"), ("person", "VARCHAR"),
                        ("engaged", "BOOLEAN"), ("senior", "BOOLEAN"), ("function", "VARCHAR"), ("high", "BIGINT"),
                        ("total", "BIGINT"), *[(f"m{i}", "BOOLEAN") for i in range(len(self.signals))]]
        con.execute(f"CREATE OR REPLACE TEMP TABLE python_contacts ({', '.join(f'{n} {t}' for n, t in self.columns)})")
        self.files = ParquetFolder(scorer.tmp.name, "contacts-")
        self.contacts: str | None = None  # each block's contacts statement, made at the first (see add_sql)
        scorer.plan.udfs.register(con)

    @contextlib.contextmanager
    def reading(self) -> Iterator[AccountPass]:
        """DuckDB's memory limit is ACCOUNT_PASS_MEMORY inside, the scorer's own again after (however
        the reading ends)."""
        with self.limited(ACCOUNT_PASS_MEMORY):
            yield self

    @contextlib.contextmanager
    def limited(self, limit: str) -> Iterator[None]:
        """DuckDB's memory limit is ``limit`` inside, the scorer's own again after."""
        con = self.scorer.con
        con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            con.execute(f"SET memory_limit = '{self.scorer.memory_limit}'")

    def add_sql(self) -> None:
        """Count the contacts of the leads behind ``b_leads`` / ``b_acts``.

        The signal relation is read as a subquery, not stored, and made of the few signals a contact
        adds to its account alone (:meth:`ColumnarScorer.signals_read_by`): DuckDB plans a block's
        statement anew each time, so the SQL of signals nobody reads here cost as much as running the
        rest (with every installed pack, 231 -> 106 ms a block of 7,700 leads; bench/README.md,
        thirty-seventh round). With a pack reading the best contact's total, the plan runs up to
        each lead's total first (:meth:`ColumnarScorer.contact_totals`, the table ``cards``)."""
        if self.contacts is None:
            reader = self.sql.contacts(self.scorer.same_account[False])
            self.contacts = f"WITH sig AS ({self.scorer.signals_read_by(reader)}) {q.sql(reader)}"
        select = self.contacts
        if not self.need_score:
            self.write(select)
            return
        try:
            self.scorer.contact_totals()
            self.write(select)
        finally:
            self.scorer.drop_batch()

    def write(self, select: str) -> None:
        """The contacts ``select`` gives (:meth:`AccountSql.contacts`' columns) as the next file of the
        folder, each column of the type the sums read; nothing is left of a file that fails half-way
        (the block is then run again in parts or counted the python way)."""
        typed = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in self.columns)
        self.files.write(self.scorer.con, f"SELECT {typed} FROM ({select})")

    def add_python(self, leads: dict[int, Any]) -> None:
        """Count the contacts among ``leads`` (line number -> Lead or Rejection) the python way: a
        block's odd lines, and the leads of a block the SQL could not run."""
        self._python_contacts(self.scorer.con, leads)

    def finish(self, left_out: str | None = None, merged: Iterable[tuple[int, Lead]] = ()) -> SqlAccounts:
        """Each account's signals (the table ``account_rows``, by key, for the leads the python
        engine scores) and each contact's account row in line order (:meth:`AccountSql.by_contact`,
        a Parquet file a range of lines, which the scoring pass reads a block at a time); the
        contacts and the summaries they made are dropped. ``left_out``: a table of the lines (``k``)
        whose contacts do not count (later leads with an id met before; with --dedupe, every copy of
        an id that more than one line has). ``merged``: (line, lead) of the leads those copies were
        merged into (--dedupe), counted the python way at their line, as the scoring pass scores them.

        Each block used to join every contact's account key (a table of ``k`` and ``key``) with
        every account's row: at ten million leads 1.2 s a block, with the two tables read back from
        DuckDB's temporary storage filling its whole memory limit; a block's range of lines in the
        sorted files is read in about 0.1 s (bench/README.md, fifteenth round)."""
        con = self.scorer.con
        con.execute("CREATE OR REPLACE TEMP TABLE merged_contacts AS SELECT * FROM python_contacts LIMIT 0")
        merged = iter(merged)
        while chunk := dict(islice(merged, BATCH)):
            self._python_contacts(con, chunk, "merged_contacts")
        self.gather(left_out, "merged_contacts")
        first, last, count = con.execute("SELECT min(k), max(k), count(*) FROM contacts").fetchall()[0]
        parts = parts_of(count)
        self._account_rows(parts)
        by_contact = ParquetFolder(self.scorer.tmp.name, "contact-accounts-")
        try:
            self._sorted_rows(by_contact, parts, first, last)
        except BaseException:
            by_contact.close()
            raise
        con.execute("DROP VIEW contacts")
        con.execute("DROP TABLE python_contacts")
        con.execute("DROP TABLE merged_contacts")
        self.close()
        return SqlAccounts(self, con, by_contact, self.roll_up)

    def _account_rows(self, parts: int) -> None:
        """The tables ``account_rows`` (each account's signals) and, for the account cards,
        ``account_extras``: the sums of one of ``parts`` parts of the accounts at a time (by a hash
        of their key), each under ACCOUNT_SUMS_MEMORY; a part DuckDB cannot sum in that runs again
        under the scorer's own limit (the one --memory-limit sets and the way out an error names)."""
        for part in range(parts):
            self._fitted(ACCOUNT_SUMS_MEMORY, partial(self._sum_part, self.part_contacts(parts, part), part == 0))
        self.scorer.con.execute("DROP VIEW IF EXISTS part_contacts")

    def part_contacts(self, parts: int, part: int) -> str:
        """The relation of the contacts of accounts in part ``part`` of ``parts`` (by a hash of their
        key): ``contacts`` itself when there is one part, else the view ``part_contacts`` made now."""
        if parts == 1:
            return "contacts"
        self.scorer.con.execute(f"CREATE OR REPLACE TEMP VIEW part_contacts AS "
                                f"SELECT * FROM contacts WHERE hash(key) % {parts} = {part}")
        return "part_contacts"

    def _sum_part(self, contacts: str, first: bool) -> None:
        """The accounts of ``contacts`` into ``account_rows`` (and ``account_extras``): the tables
        made when ``first``, added to after. One transaction: a part that fails leaves nothing behind,
        so it can run again."""
        con = self.scorer.con
        sums = [("account_sum", self.sql.summary(contacts))]
        sums += [(f"same_{index}", self.sql.same(index, contacts)) for index in range(len(self.signals))]
        kept = [("account_rows", self.sql.by_account())]
        if self.roll_up:  # kept for the account cards (see SqlAccounts.accounts)
            kept.append(("account_extras", self.sql.extras(contacts)))
        con.execute("BEGIN TRANSACTION")
        try:
            for name, select in sums:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {q.sql(select)}")
            for name, select in kept:
                made = f"CREATE OR REPLACE TEMP TABLE {name} AS" if first else f"INSERT INTO {name}"
                con.execute(f"{made} {q.sql(select)}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        for name, _ in sums:
            con.execute(f"DROP TABLE {name}")

    def _sorted_rows(self, by_contact: ParquetFolder, parts: int, first: int | None, last: int | None) -> None:
        """Each contact's account row in line order, as ``by_contact``'s files: the contacts of lines
        ``first`` to ``last`` in ``parts`` ranges of lines, a file each, each sorted under
        CONTACT_ACCOUNTS_MEMORY; a range DuckDB cannot sort in that runs again under the scorer's
        own limit, the one --memory-limit sets and the way out an error names."""
        ranges: list[tuple[int, int] | None] = [None]  # no contacts: one empty file
        if first is not None and last is not None:
            width = (last - first) // parts + 1
            ranges = [(low, min(low + width - 1, last)) for low in range(first, last + 1, width)]
        for lines in ranges:
            select = q.sql(self.sql.by_contact("account_rows", lines=lines))
            self._fitted(CONTACT_ACCOUNTS_MEMORY,
                         partial(by_contact.write, self.scorer.con, select, row_group=CONTACT_ACCOUNTS_ROW_GROUP))

    def _fitted(self, limit: str, step: Callable[[], None]) -> None:
        """``step`` under DuckDB's memory limit ``limit``; where DuckDB runs out of memory in it, ``step``
        again under the scorer's own limit (a step leaves nothing behind when it fails)."""
        import duckdb

        try:
            with self.limited(limit):
                step()
        except duckdb.OutOfMemoryException:
            step()

    def gather(self, left_out: str | None = None, also: str | None = None) -> None:
        """The view ``contacts`` over every contact counted (the files and ``python_contacts``), but
        those of the lines in ``left_out``, and those of the table ``also``, for the sums
        (:meth:`AccountSql.summary` and the others)."""
        contacts = "SELECT * FROM python_contacts"
        written = self.files.read()
        if written is not None:
            contacts += f" UNION ALL SELECT * FROM {written}"
        if left_out is not None:
            contacts = f"SELECT * FROM ({contacts}) ANTI JOIN {left_out} USING (k)"
        if also is not None:
            contacts += f" UNION ALL SELECT * FROM {also}"
        self.scorer.con.execute(f"CREATE OR REPLACE TEMP VIEW contacts AS {contacts}")

    def close(self) -> None:
        """Remove the contacts' files (done by :meth:`finish`; for a pass left before it)."""
        self.files.close()

    def _python_contacts(self, con: Any, by_python: dict[int, Any], table: str = "python_contacts") -> None:
        """Contacts the python engine scores: their summary values the python way."""
        engine, when = self.engine, self.when
        rows = []
        for k, lead in sorted(by_python.items()):
            if not isinstance(lead, Lead) or account_key(lead) is None:
                continue
            try:
                seen = seen_at(lead, when)  # as Engine.account_entry: its later activities left out
                total = None
                if self.need_score:
                    card, values = engine._score(seen, when, None)
                    total = card.total
                else:
                    values = engine._values(seen, when)
                matched = set()
                if engine.contact_matcher is not None:
                    matched = {r for r, _ in engine.contact_matcher.match(values, seen.activities, when)}
            except Exception:  # noqa: BLE001 - as in build_accounts: the scoring pass reports it
                continue
            function = values.get("title.function")
            rows.append((k, account_key(lead), lead.id, _person_text(lead),
                         values.get("intent.beyond_email.count_90d", 0) >= 1,
                         values.get("title.seniority") in SENIOR, function,
                         values.get("intent.high.count_30d", 0) + values.get("intent.readiness.count_30d", 0), total,
                         *[i in matched for i in range(len(self.signals))]))
        insert_rows(con, table, rows)


def _function_engaged() -> exp.Expression:
    """A contact's function counts for its account: engaged, and a function other than none or "other"."""
    return q.and_(q.col("engaged"), q.not_null(q.col("function")), q.col("function").neq(q.lit("")),
                  q.col("function").neq(q.lit("other")))


# --- the account pass over a stream of records (CSV, Parquet, an activities file, ...) ------------------


def account_pass(engine: Any, scorer: Any, leads: Iterable[Lead | Rejection], when: datetime,
                 batch_size: int = BATCH, file_acts: Any = None, roll_up: bool = False) -> SqlAccounts:
    """The account pass over a stream of leads in DuckDB, batch by batch, as the JSON Lines scan makes
    it: each contact's summary values in SQL (those of a lead the SQL does not take, or of a part it
    cannot run, the python way), then the sums per account. leadscore.columnar.run.score_batches
    reads the result with the same stream of leads again (``roll_up``: and records each scored
    contact for the account cards, which then read the cards' signal values)."""
    summary = AccountPass(engine, scorer, when, roll_up)
    try:
        with summary.reading():
            for first, batch in batches(leads, batch_size):
                _count_contacts(summary, scorer, first, batch, when, file_acts)
        return summary.finish()
    finally:
        summary.close()


def _count_contacts(summary: AccountPass, scorer: Any, first: int, batch: list[Lead | Rejection], when: datetime,
                    file_acts: Any) -> None:
    """The batch's contacts into the account pass: in SQL, and the python way for the others."""
    if file_acts is not None and file_acts.con is None:
        file_acts = None
    rows = Rows(scorer.numeric_fields, evidence=False)
    as_of_us = q.micros(when)
    columnar = columnar_leads(batch, first, rows, as_of_us, file_acts)

    def count(part: dict[int, Lead], rows: Rows) -> None:
        scorer.load(*rows.tables(), None, file_acts, rows.held_table())
        summary.add_sql()

    done = set(columnar) - set(in_parts(scorer, columnar, rows, as_of_us, file_acts, count, "accounts"))
    python = {k: item for k, item in enumerate(batch, start=first) if isinstance(item, Lead) and k not in done}
    if python and file_acts is not None:  # the leads with their file activities, as the python reader hands them on
        python = dict(zip(python, file_acts.joined(list(python.values()))))
    if python:
        summary.add_python(python)
    scorer.drop_batch()


def _copied(values: AccountSignals) -> AccountSignals:
    """A lead's own copy of its account's values (the python engine's are made afresh for each lead)."""
    copy = AccountSignals(values)
    copy.evidence.update(values.evidence)
    return copy


def _email_domain(email: str | None) -> str | None:
    """The account key a lead without account_id gets: its business email domain (see account_key)."""
    if not email:
        return None
    kind, domain = classify_address(email)
    return domain if kind == "business" else None


def _person_text(lead: Any) -> str:
    """person_key as text: "e:" and the normalised email, or "i:" and the lead id."""
    key = person_key(lead)
    return f"i:{key[1]}" if isinstance(key, tuple) else f"e:{key}"


def _person(email: str | None, lead_id: str | None) -> str:
    return _person_text(Lead(lead_id or "-", email=email))


def person_sql(email: exp.Expression, lead_id: exp.Expression, python: Any) -> exp.Expression:
    """person_key in SQL for ASCII addresses without spaces at their ends (Python's strip() and lower()
    are DuckDB's there); ``python(email, id)`` for the others, or, without ``python``, every address
    trimmed of spaces (Python's strip() on printable ASCII: the exported query marks other text inexact)."""
    if python is None:
        email = exp.Trim(this=email)
    e = q.fn("lower", q.coalesce(email, q.lit("")))
    at = q.fn("strpos", e, q.lit("@"))
    local = q.fn("split_part", q.fn("substr", e, q.lit(1), exp.Sub(this=at, expression=q.lit(1))), q.lit("+"), q.lit(1))
    domain = q.fn("substr", e, exp.Add(this=at, expression=q.lit(1)))
    gmail = q.in_(domain, ("gmail.com", "googlemail.com"))
    by_email = q.concat(q.lit("e:"), q.case([(gmail, q.fn("replace", local, q.lit("."), q.lit("")))], local), q.lit("@"),
                        q.case([(gmail, q.lit("gmail.com"))], domain))
    plain = q.or_(q.is_null(email), q.and_(q.fn("strlen", email).eq(q.fn("length", email)),
                                           q.not_(q.space_around(email))))
    by_id = (exp.LTE(this=at, expression=q.lit(1)), q.concat(q.lit("i:"), lead_id))
    if python is None:
        return q.case([by_id], by_email)
    return q.case([(q.not_(plain), python(email, lead_id)), by_id], by_email)


class SqlAccounts:
    """The account pass's result: each block's contacts' rows for the scoring pass's SQL
    (:meth:`block_rows`), and each account's values for the leads the python engine scores (the
    AccountIndex calls it makes). With ``roll_up`` (``score --accounts``) it also keeps each
    account's scored contacts (:meth:`record`) for the account cards (:attr:`accounts`)."""

    def __init__(self, run: AccountPass, con: Any, by_contact: ParquetFolder, roll_up: bool = False) -> None:
        self.run = run
        self.con = con
        self.by_contact = by_contact
        self.roll_up = roll_up
        self.caps = dict(run.sql.caps)
        # The values of the accounts :meth:`fetch` read (None: read, and no such account).
        self.fetched: dict[str, AccountSignals | None] = {}
        self.scored: dict[str, list[Contact]] = {}  # with roll_up: each account's scored contacts
        self._accounts: dict[str, AccountSummary] | None = None

    def block_rows(self, lines: tuple[int, int]) -> exp.Select:
        """The ``account.*`` rows of the contacts on lines ``lines`` (:meth:`AccountSql.block_rows`)."""
        found = self.by_contact.read()
        assert found is not None
        return self.run.sql.block_rows(found, lines)

    def close(self) -> None:
        """Remove the files of each contact's account row (when the scan ends)."""
        self.by_contact.close()

    def fetch(self, keys: Iterable[str | None]) -> None:
        """Read the values of accounts ``keys`` in one query for the :meth:`signals_for` calls that
        follow (those of a block's leads the python engine scores: one query each would scan
        ``account_rows``, a row an account, for every lead); the accounts fetched before are dropped."""
        wanted = sorted({key for key in keys if key is not None})
        self.fetched = {**dict.fromkeys(wanted), **self._read(wanted)}

    def signals_for(self, key: str | None) -> AccountSignals | dict[str, Any]:
        """The ``account.*`` values of account ``key`` as AccountIndex.signals_for gives them."""
        if key is None:
            return {}
        values = self.fetched[key] if key in self.fetched else self._read([key]).get(key)
        return {} if values is None else _copied(values)

    def _read(self, keys: list[str]) -> dict[str, AccountSignals]:
        """The values of the accounts among ``keys`` that ``account_rows`` has, in one query."""
        if not keys:
            return {}
        import pyarrow as pa

        self.con.register("wanted_accounts", pa.table({"key": pa.array(keys, pa.string())}))
        try:
            cursor = self.con.execute("SELECT * FROM account_rows WHERE key IN (SELECT key FROM wanted_accounts)")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, found)) for found in cursor.fetchall()]
        finally:
            self.con.unregister("wanted_accounts")
        return {row["key"]: self._signals(row) for row in rows}

    def _signals(self, row: dict[str, Any]) -> AccountSignals:
        """An ``account_rows`` row as the account's values and their evidence."""
        values = AccountSignals({})
        for name in self.run.sql.names():
            if name == "account.best_lead_score" and row[name] is None:
                continue  # no contact's total: not a value (as AccountSummary.signals leaves it out)
            values[name] = row[name]
        for name in self.run.signals:
            values.evidence[name] = row[f"{name}#ev"]
        return values

    def record(self, key: str | None, lead: Lead, card: ScoreCard, values: Mapping[str, Any]) -> None:
        """With ``roll_up``: keep a scored contact of account ``key`` for its card, as AccountIndex.record does."""
        if self.roll_up and key is not None:
            add_contact(self.scored.setdefault(key, []), lead, card, values)

    @property
    def accounts(self) -> dict[str, AccountSummary]:
        """Every account's summary, as AccountIndex.accounts holds them for the account cards (with
        ``roll_up``; read once, after the scoring pass has recorded the contacts): its counts and
        functions from the pass's sums, its scored contacts from :meth:`record`."""
        if self._accounts is None:
            self._accounts = self._summaries()
        return self._accounts

    def _summaries(self) -> dict[str, AccountSummary]:
        found = self.con.execute("SELECT r.key, r.\"account.contacts\", r.\"account.engaged_contacts\", "
                                 "r.\"account.senior_engaged_contacts\", r.\"account.high_intent_30d\", "
                                 + ("r.\"account.best_lead_score\", " if self.run.need_score else "NULL, ")
                                 + "x.functions, x.best_lead FROM account_rows r JOIN account_extras x USING (key)").fetchall()
        return {key: AccountSummary(key, contacts, engaged, senior, set(functions), high, best, best_lead if best is not None
                                    else None, self.scored.get(key, []))
                for key, contacts, engaged, senior, high, best, functions, best_lead in found}
