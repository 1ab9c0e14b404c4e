"""The scoring engine: signals -> composition -> matching -> ledger -> band -> route, one lead at a time.

Everything plugin-provided is collected once when the Engine is built; scoring a lead calls plain
functions only. Every lead yields exactly one ScoreCard or one Rejection.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from leadscore.accounts import (
    CONTACT_SIGNALS,
    AccountCard,
    AccountEntry,
    AccountIndex,
    AccountTests,
    account_card,
    account_comparisons,
    account_key,
    person_key,
)
from leadscore.backends import Matcher, get_backend
from leadscore.caching import BoundedCache
from leadscore.errors import ConfigurationError, PluginError, PluginFault, RulepackError, RulepackErrors, describe_failure
from leadscore.hookspecs import declared_reads
from leadscore.model import (
    ExtractContext,
    Lead,
    Rejection,
    ScoreCard,
    ScoreLine,
    Signal,
    SignalExtractor,
    evolve,
)
from leadscore.plugins import RULES_SCORER, PluginManager
from leadscore.rulepack.composer import ComposedPack, Composer
from leadscore.rulepack.loader import pack_name, parse_rulepacks, read_source
from leadscore.rulepack.schema import Condition, RuleIR, Rulepack
from leadscore.scoring import build_ledger, choose_band, share_thresholds
from leadscore.scoring.bands import band_key


def _in_time_order(lead: Lead) -> Lead:
    """The lead with its activities oldest first (readers already sort; records built in code may not)."""
    acts = lead.activities
    ordered = acts.by_time()
    return lead if ordered is acts else evolve(lead, activities=ordered)


def seen_at(lead: Lead, when: datetime) -> Lead:
    """The lead as it stood at ``when``: its activities oldest first, the later ones left out (what
    the account pass reads of a contact)."""
    acts = lead.activities.until(when)
    return lead if acts is lead.activities else evolve(lead, activities=acts)


def _require_duckdb() -> None:
    try:
        import duckdb  # noqa: F401
        import pyarrow  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError as err:
        raise ConfigurationError("--engine duckdb", f"the columnar engine is not available ({err})",
                                 "install it with pip install 'leadscore[columnar]'") from err


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class Engine:
    """Scores leads with the rulepacks that apply to each of them.

    :param plugins: a PluginManager; by default one with the built-ins and installed plugins.
    :param rulepacks: installed rulepack names and/or paths to TOML files; by default every
        installed rulepack (with only the core installed: ``firr-base``). A file may extend
        installed packs by name.
    :param backend: ``python`` (default), ``durable``, ``duckdb`` (the columnar engine) or
        ``spark`` (:meth:`score` and :meth:`score_files` run on a Spark session; see leadscore.spark).
    :param as_of: the scoring time (timezone-aware; naive means UTC); by default now. Decay and
        activity windows are measured back from it, and later activities are ignored.
    :param session: with ``backend="spark"``, the SparkSession to run on (a ``spark-submit`` job's
        own); by default a local one (``local[*]``) started when first needed.
    :param memory_limit: with ``backend="duckdb"``, DuckDB's memory limit (``"400MB"``, ``"2GB"``;
        default ``"200MB"``, least ``"150MB"``): past it DuckDB spills to a temporary directory.
        A higher one is faster on large files with an activities file; see docs/backends.md.
    """

    def __init__(
        self,
        *,
        plugins: PluginManager | None = None,
        rulepacks: Sequence[str | Path] | None = None,
        backend: str = "python",
        as_of: datetime | None = None,
        session: Any = None,
        memory_limit: str | None = None,
    ) -> None:
        if backend == "spark" and plugins is not None:
            # The executors build their own engines, with the installed plugins.
            raise ConfigurationError("backend='spark'", "Spark's executors load the installed plugins; a "
                                     "PluginManager made in this process cannot be sent to them",
                                     "install the plugin as a package (a leadscore entry point) and leave out plugins=")
        if session is not None and backend != "spark":
            raise ConfigurationError("session=", f"a Spark session is for backend='spark', not {backend!r}",
                                     "pass backend='spark' or leave out session=")
        if memory_limit is not None and backend != "duckdb":
            raise ConfigurationError("memory_limit=", f"a memory limit is for backend='duckdb' (DuckDB's), not {backend!r}",
                                     "pass backend='duckdb' or leave out memory_limit=")
        from leadscore.columnar import DEFAULT_MEMORY_LIMIT, memory_limit_bytes

        # DuckDB's limit as a count of bytes (DuckDB reads "157286400B" as it is).
        self.memory_limit = f"{memory_limit_bytes(memory_limit or DEFAULT_MEMORY_LIMIT, 'memory_limit=')}B"
        self.spark = session
        # The packs as Spark's executors load them again (a file by its absolute path).
        self.rulepack_names = tuple(os.path.abspath(pack) if os.path.isfile(pack) else os.fspath(pack)
                                    for pack in rulepacks) if rulepacks else None
        self.pm = plugins if plugins is not None else PluginManager()
        self.as_of = _as_utc(as_of) if as_of is not None else None
        self.extractors = self.pm.get_signal_extractors()
        self.policies = self.pm.get_decay_policies()
        self.scorers = self.pm.get_scorers()
        self.strategies = self.pm.get_rollup_strategies()
        self.router = self.pm.get_router()
        self.packs, self.vocabulary, active = self._load_rulepacks(rulepacks)
        self._check_scorers()
        self.composer = Composer(self.packs, active, self.policies)
        self.same_account = self.composer.same_account_specs()
        self.wanted = self.composer.wanted_signals()
        self.needs_accounts = any(name.startswith("account.") for name in self.wanted)
        self.contact_signals = CONTACT_SIGNALS | frozenset(n for spec in self.same_account for n in spec.where.signals())
        self.wanted = self.wanted | self.contact_signals
        # The account pass extracts only the contact signals, from the extractors declaring them.
        self.contact_extractors = _extractors_for(self.extractors, self.contact_signals)
        self._contact_ctx: BoundedCache[datetime, ExtractContext] = BoundedCache(64)
        self.account_config = self._account_config()
        self._ctx_cache: BoundedCache[datetime, ExtractContext] = BoundedCache(64)
        # Band sets with "top N%" minimums -> this run's minimums (resolve_shares fills it).
        self.band_minimums: dict[tuple[Any, ...], list[int]] = {}
        # The columnar engine scores whole batches in SQL (leadscore.columnar); the python matcher
        # serves the leads it leaves to the reference path.
        self.columnar = backend == "duckdb"
        if self.columnar:
            _require_duckdb()
        self.backend = get_backend("python" if self.columnar or backend == "spark" else backend)
        self.backend_name = backend
        self._scorers: dict[tuple[Any, ...], Any] = {}
        # Every combination of packs a lead can meet, composed and compiled now: a conflict
        # between packs, or a rule the backend cannot run, stops the run before the first lead.
        self._matchers: dict[frozenset[str], tuple[ComposedPack, Matcher]] = {}
        self._shares = False  # whether a composed combination has a share band (see needs_shares)
        self.contact_matcher: Matcher | None = None
        try:
            for key in self.composer.combinations():
                self.plan(key)
            if self.same_account:
                self.contact_matcher = self.backend.compile(self._contact_rules(), ("same_account",))
        except BaseException:
            self.close()
            raise
        self.account_reads, self.undeclared_readers = self._account_reads()
        self._reads_by_packs: dict[frozenset[str], frozenset[str] | None] = {}
        self._tests_by_packs: dict[frozenset[str], AccountTests | None] = {}
        # What the packs' applies_when read, and the extractors producing it: a lead's packs can be
        # chosen without scoring it (Engine.packs_for).
        self.selection_signals = frozenset(n for name, _, _ in self.composer.conditional
                                           for n in self.composer.by_name[name].applies_when.signals())
        self._selection_extractors = _extractors_for(self.extractors, self.selection_signals)
        self.account_reads_everywhere = self._account_reads_everywhere()
        self._selection_reads_account = self.account_reads is None or any(
            n.startswith("account.") for n in self.selection_signals | _declared_account_reads(
                (ex.name, ex.fn) for ex in self._selection_extractors)[0])
        self._selection_ctx: BoundedCache[datetime, ExtractContext] = BoundedCache(64)

    # --- set-up ---------------------------------------------------------------------------

    def _load_rulepacks(self, rulepacks: Sequence[str | Path] | None) -> tuple[list[Rulepack], dict[str, Any], list[str]]:
        """Read and validate the installed packs and the files given; return (packs, merged
        vocabulary, names of the packs the run uses: those asked for, or every pack)."""
        sources = self.pm.get_rulepack_sources()
        self.pack_origin = {name: plugin for name, (_, plugin) in sources.items()}
        files: list[tuple[str, str]] = []
        chosen_paths: list[str] = []
        chosen_names: list[str] = []
        for item in rulepacks or ():
            # A name that is not installed but is on disk (a folder given by mistake, a file
            # without .toml) is read as a path, so the message is about that file.
            if (isinstance(item, Path) or str(item).endswith(".toml") or "/" in str(item)
                    or (str(item) not in sources and os.path.lexists(item))):
                display, text = read_source(Path(item))
                files.append((display, text))
                chosen_paths.append(display)
            elif str(item) in sources:
                chosen_names.append(str(item))
            else:
                raise ConfigurationError(
                    "--rulepack", f"no installed rulepack named {item!r}",
                    f"use a path to a .toml file or one of: {', '.join(sorted(sources)) or 'none installed'}")
        # A file that holds an installed pack's name is that pack as edited here: it replaces the
        # installed one for this run (checking or trying out a change before it is published).
        self.replaced = {name: self.pack_origin.pop(name) for name in map(pack_name, (t for _, t in files))
                         if name in self.pack_origin}
        texts: list[tuple[str, str]] = []
        for name, (source, plugin) in sources.items():
            if name not in self.replaced:
                display, text = read_source(source.resource)
                texts.append((f"{plugin}:{display}", text))
        specs = [spec for ex in self.extractors for spec in ex.provides]
        packs, vocabulary = parse_rulepacks(texts + files, specs, self.policies)
        by_source = {p.source: p for p in packs}
        active = chosen_names + [by_source[path].name for path in chosen_paths]
        if rulepacks is None:
            active = [p.name for p in packs]
        if not active:
            raise ConfigurationError("--rulepack", "no rulepack to score with",
                                     "install a plugin or pass --rulepack PATH")
        return packs, vocabulary, active

    def _check_scorers(self) -> None:
        for pack in self.packs:
            for scorer in pack.scorers:
                if scorer != RULES_SCORER and scorer not in self.scorers:
                    known = sorted({RULES_SCORER, *self.scorers})
                    raise RulepackErrors([RulepackError(pack.source, f"unknown scorer {scorer!r}",
                                                        f"use one of {', '.join(known)}")])

    def _account_config(self) -> dict[str, Any]:
        config, source = self.composer.account_config()
        if config["rollup"] not in self.strategies:
            raise RulepackErrors([RulepackError(source or "[accounts]", f"unknown roll-up strategy {config['rollup']!r}",
                                                f"use one of {', '.join(sorted(self.strategies))}")])
        return config

    def _contact_rules(self) -> list[RuleIR]:
        """The ``where`` of each same_account condition as a rule, for the account pass's matcher."""
        return [RuleIR(id=spec.signal, category="same_account", points=0, reason="", pack="same_account",
                       when=spec.where, signals=tuple(sorted(spec.where.signals())))
                for spec in self.same_account]

    def _account_reads(self) -> tuple[frozenset[str] | None, list[str]]:
        """(the ``account.*`` signals a card can depend on, the plugin functions that did not say).

        Rules, gates and ``applies_when`` name what they read; the extractors, the scorers the
        packs use and the routers may read any signal, so each declares its reads with
        ``reads_signals``. One that does not makes the first item None: any account signal may
        matter (``leadscore ingest`` then rescores every contact whenever any of them moves).
        """
        names = {n for n in self.composer.wanted_signals() if n.startswith("account.")}
        used = sorted({n for composed, _ in self._matchers.values() for n in composed.scorers if n != RULES_SCORER})
        extractors = [(f"signal extractor {ex.name!r} ({self.pm.plugin_of('signal extractor', ex.name)})", ex.fn)
                      for ex in self.extractors]
        for what, fn in extractors:
            if (reads := declared_reads(fn)) is not None and reads.by_packs:
                raise PluginError(what, "declares signals it reads for the leads of some packs only (reads_signals("
                                  "..., packs=...)), but an extractor runs before a lead's packs are chosen",
                                  "declare the extractor's reads without packs=")
        functions = extractors + [(f"scorer {n!r} ({self.pm.plugin_of('scorer', n)})", self.scorers[n].fn)
                                  for n in used]
        functions += [(f"router of {plugin!r}", fn) for plugin, fn in self.pm.routers_by_plugin()]
        found, undeclared = _declared_account_reads(functions)
        return (None if undeclared else frozenset(names | found)), undeclared

    def _account_reads_everywhere(self) -> frozenset[str] | None:
        """The ``account.*`` signals every card can depend on, whatever its packs: what the
        extractors and routers declare they read for every lead (not for the leads of some packs
        only), and every pack's ``applies_when`` (a moved account signal there can change which
        packs apply). None: any of them, one did not declare its reads."""
        functions = [(ex.name, ex.fn) for ex in self.extractors] + self.pm.routers_by_plugin()
        found, undeclared = _declared_account_reads(functions, packs=frozenset())
        return None if undeclared else frozenset(n for n in found | self.selection_signals if n.startswith("account."))

    def account_reads_for(self, packs: frozenset[str]) -> frozenset[str] | None:
        """The ``account.*`` signals a card scored with the pack combination ``packs`` can depend on:
        its own rules', gates' and scorers', what the routers declare they read for the leads of
        one of these packs, and what every card can read (:attr:`account_reads_everywhere`).
        None: any of them. Made once per combination."""
        if packs not in self._reads_by_packs:
            everywhere = self.account_reads_everywhere
            composed, _ = self.plan(packs)
            names = {n for rule in composed.rules for n in rule.signals}
            names.update(n for band in composed.bands if band.requires is not None for n in band.requires.signals())
            functions = [(n, self.scorers[n].fn) for n in composed.scorers if n != RULES_SCORER]
            found, undeclared = _declared_account_reads(functions + self.pm.routers_by_plugin(), packs=packs)
            self._reads_by_packs[packs] = None if everywhere is None or undeclared else frozenset(
                everywhere | found | {n for n in names if n.startswith("account.")})
        return self._reads_by_packs[packs]

    def account_tests_for(self, packs: frozenset[str]) -> AccountTests | None:
        """How a card scored with the pack combination ``packs`` reads the account signals of
        :meth:`account_reads_for`: its rules', gates' and every ``applies_when``'s comparisons of
        them, and what the plugin functions declare they read (the extractors', and the scorers'
        and routers' for a lead of these packs), whole or through the comparisons they declare
        (``reads_signals(compares=...)``). None: a function did not declare its reads, any change
        may matter. Made once per combination."""
        if packs not in self._tests_by_packs:
            tests = None
            if self.account_reads_for(packs) is not None:
                composed, _ = self.plan(packs)
                conditions = [rule.when for rule in composed.rules] + [band.requires for band in composed.bands]
                conditions += [self.composer.by_name[name].applies_when for name, _, _ in self.composer.conditional]
                comparisons, opaque = account_comparisons(conditions)
                functions = [ex.fn for ex in self.extractors] + [fn for _, fn in self.pm.routers_by_plugin()]
                functions += [self.scorers[n].fn for n in composed.scorers if n != RULES_SCORER]
                for reads in filter(None, map(declared_reads, functions)):
                    for name in reads.for_packs(packs):
                        if not name.startswith("account."):
                            continue
                        compared = reads.comparisons(name)
                        if compared is None:
                            opaque.add(name)  # it may use any value
                        else:
                            found, _ = account_comparisons(Condition(op, name, value) for op, value in compared)
                            comparisons.extend(found)
                tests = AccountTests(tuple(comparisons), frozenset(opaque))
            self._tests_by_packs[packs] = tests
        return self._tests_by_packs[packs]

    def plan(self, key: frozenset[str]) -> tuple[ComposedPack, Matcher]:
        """The composed pack and the backend's matcher for a combination of packs (made once)."""
        hit = self._matchers.get(key)
        if hit is None:
            composed = self.composer.get(key)
            hit = self._matchers[key] = (composed, self.backend.compile(composed.rules, composed.key))
            self._shares = self._shares or composed.has_shares
        return hit

    def active_packs(self) -> list[Rulepack]:
        return self.composer.packs()

    def categories(self) -> tuple[str, ...]:
        """The run's score categories, each once, in pack then declaration order: the CSV's and
        Parquet's ``score_<category>`` columns."""
        seen: dict[str, None] = {}
        for pack in self.active_packs():
            for category in pack.categories:
                seen.setdefault(category.name)
        return tuple(seen)

    @property
    def needs_shares(self) -> bool:
        """Whether a band of the run is a share of leads (``min = "top 5%"``): then every lead is
        scored once to set the minimums (:meth:`resolve_shares`) before any band is given.
        (Kept as the combinations are composed: ``leadscore ingest`` asks it for every card.)"""
        return self._shares

    def resolve_shares(self, leads: Iterable[Lead | Rejection], as_of: datetime | None = None,
                       accounts: AccountIndex | None = None) -> list[tuple[str, str, int, int]]:
        """A first scoring pass that sets each share band's minimum from the run's totals.

        Totals are gathered per band set (leads whose packs take their bands from different
        packs are ranked apart); rejected leads and leads that fail to score are not counted.
        Returns (band, its "top N%", the minimum it got, leads ranked) for each share band.
        """
        when = self._resolve_as_of(as_of)
        totals: dict[tuple[Any, ...], list[int]] = {}
        sets: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for item in leads:
            if isinstance(item, Rejection):
                continue
            try:
                account = accounts.signals_for(account_key(item)) if accounts is not None else None
                composed, _, _, _, _, total = self._points(item, when, account)
            except Exception:  # the scoring pass reports this lead's problem as a rejection
                continue
            if composed.has_shares:
                key = band_key(composed.bands)
                totals.setdefault(key, []).append(total)
                sets[key] = composed.bands
        for composed, _ in self._matchers.values():
            if composed.has_shares:
                key = band_key(composed.bands)
                sets.setdefault(key, composed.bands)
        summary = []
        for key, bands in sets.items():
            found = share_thresholds(bands, totals.get(key, []))
            self.band_minimums[key] = found
            summary += [(band.name, band.min_text, value, len(totals.get(key, [])))
                        for band, value in zip(bands, found) if band.share is not None]
        return summary

    # --- scoring --------------------------------------------------------------------------

    def _context(self, as_of: datetime) -> ExtractContext:
        ctx = self._ctx_cache.get(as_of)
        if ctx is None:
            ctx = self._ctx_cache.put(as_of, ExtractContext(as_of, self.vocabulary, self.wanted))
        return ctx

    def signals(self, lead: Lead, as_of: datetime | None = None) -> dict[str, Signal]:
        """Every signal the extractors produce for ``lead`` (for explanations and debugging)."""
        ctx = ExtractContext(self._resolve_as_of(as_of), self.vocabulary, None)
        return {s.name: s for ex in self.extractors for s in ex.fn(lead, ctx)}

    def _resolve_as_of(self, as_of: datetime | None) -> datetime:
        if as_of is not None:
            return _as_utc(as_of)
        if self.as_of is None:
            self.as_of = utcnow()
        return self.as_of

    def score_lead(self, lead: Lead, as_of: datetime | None = None,
                   account: Mapping[str, Any] | None = None, assume: Mapping[str, Any] | None = None) -> ScoreCard:
        """Score one lead; raises on a plugin failure (``score`` turns that into a Rejection).

        ``account`` holds the lead's ``account.*`` signal values (see :meth:`build_accounts`).
        ``assume`` sets signal values over what the extractors found: what the card would be if
        sales confirmed a fact (see :mod:`leadscore.next_steps`).
        """
        return self._score(lead, self._resolve_as_of(as_of), account, assume)[0]

    def _score(self, lead: Lead, when: datetime, account: Mapping[str, Any] | None,
               assume: Mapping[str, Any] | None = None) -> tuple[ScoreCard, dict[str, Any]]:
        composed, lead, signals, values, (ledger, subscores), total = self._points(lead, when, account, assume)
        minimums = None
        if composed.has_shares:
            minimums = self.band_minimums.get(band_key(composed.bands))
            if minimums is None:
                raise ConfigurationError("bands", "a band's min is a share of leads (\"top N%\"), which needs every "
                                         "lead scored once first", "call Engine.resolve_shares(leads) before scoring "
                                         "(leadscore score and explain do)")
        band, points_band, notes = choose_band(composed, total, values, minimums)
        card = ScoreCard(lead.id, when, total, tuple(subscores), band, points_band, notes, None, ledger,
                         composed.packs, lead.account_id)
        route = self.router(card, lead, {"routing": composed.routing, "packs": composed.key, "signals": values})
        if route is not None:
            card = ScoreCard(lead.id, when, total, card.subscores, band, points_band, notes, route, card.ledger,
                             composed.packs, lead.account_id)
        return card, values

    def _points(self, lead: Lead, when: datetime, account: Mapping[str, Any] | None,
                assume: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """Everything before the band: (composed pack, lead in time order, signals, values,
        (ledger, sub-scores), total)."""
        ctx = self._context(when)
        if account:
            ctx = evolve(ctx, account=account)
        lead = _in_time_order(lead)
        signals: dict[str, Signal] = {}
        for extractor in self.extractors:
            found: Any = None
            try:
                found = extractor.fn(lead, ctx)
                for sig in found:
                    signals[sig.name] = sig
            except Exception as err:
                raise self._extractor_fault(extractor, found, err) from err
        if assume:
            for name, value in assume.items():
                signals[name] = Signal(name, value, None, "assumed")
        values = {name: sig.value for name, sig in signals.items()}
        key = self.composer.select(values)
        if not key:
            raise LookupError("no rulepack applies to this lead (every installed pack has an applies_when "
                              "it does not meet); install or pass a pack without applies_when")
        composed, matcher = self.plan(key)
        events = lead.activities
        matches = matcher.match(values, events, when)
        extra = self._score_extra(composed, lead, values, when) if len(composed.scorers) > 1 else ()
        ledger, subscores, total = build_ledger(composed, matches, signals, events, when, extra)
        return composed, lead, signals, values, (ledger, subscores), total

    def _extractor_fault(self, extractor: SignalExtractor, found: Any, err: Exception) -> PluginFault:
        """Why an extractor failed on a lead, naming it and its plugin."""
        plugin = self.pm.plugin_of("signal extractor", extractor.name)
        if found is None and isinstance(err, TypeError):
            what = "returned None, not an iterable of Signals"
        elif isinstance(err, AttributeError) and found is not None:
            wrong = next((item for item in found if not isinstance(item, Signal)), None) \
                if isinstance(found, (list, tuple)) else None
            what = (f"returned {type(wrong).__name__} {wrong!r:.60}, not a Signal" if wrong is not None
                    else f"failed: {describe_failure(err)}")
        else:
            what = f"failed: {describe_failure(err)}"
        return PluginFault(plugin, "leadscore_signal_extractors", f"extractor {extractor.name!r} {what}")

    def _score_extra(self, composed: ComposedPack, lead: Lead, values: dict[str, Any],
                     when: datetime) -> list[tuple[str, ScoreLine]]:
        lines: list[tuple[str, ScoreLine]] = []
        categories = {c.name for c in composed.categories}
        for name in composed.scorers:
            if name == RULES_SCORER:
                continue
            for line in self.scorers[name].fn(lead, values, {"as_of": when, "packs": composed.key}) or ():
                if line.category not in categories:
                    raise ValueError(f"scorer {name!r} returned category {line.category!r}, which the rulepacks "
                                     f"do not declare")
                lines.append((name, line))
        lines.sort(key=lambda item: (item[0], item[1].rule_id))
        return lines

    def build_accounts(self, leads: Iterable[Lead | Rejection], as_of: datetime | None = None) -> AccountIndex:
        """First pass: group leads into accounts and summarise each (signals, best lead score).

        The best lead score is each contact's total before account rules apply; it is only
        computed when a rulepack uses ``account.best_lead_score``.
        """
        when = self._resolve_as_of(as_of)
        index = AccountIndex({spec.signal: spec.cap for spec in self.same_account})
        for item in leads:
            if isinstance(item, Rejection):
                continue
            entry = self.account_entry(item, when)
            if entry is not None:
                index.add_entry(entry)
        return index

    def account_entry(self, lead: Lead, as_of: datetime | None = None) -> AccountEntry | None:
        """What ``lead`` adds to its account's summary as of ``as_of``: None for a lead without an
        account, or one whose signals cannot be extracted (the scoring pass reports its problem).

        Made from the lead as it stood then (:func:`seen_at`): activities after ``as_of`` are no
        part of it whatever the extractors do with them, so a lead that only gained a later
        activity adds the same (``leadscore ingest`` relies on it)."""
        key = account_key(lead)
        if key is None:
            return None
        when = self._resolve_as_of(as_of)
        try:
            seen = seen_at(lead, when)
            total = None
            if "account.best_lead_score" in self.wanted:
                _, _, _, values, _, total = self._points(seen, when, None)
            else:
                values = self._values(seen, when)
            matcher = self.contact_matcher
            matched = () if matcher is None else tuple(
                self.same_account[r].signal for r, _ in matcher.match(values, seen.activities, when))
        except Exception:  # the scoring pass reports this lead's problem as a rejection
            return None
        return AccountEntry(key, lead.id, person_key(lead), values, total, matched, lead)

    def packs_for(self, lead: Lead, as_of: datetime) -> frozenset[str] | None:
        """The packs that apply to ``lead`` at ``as_of``, from what ``applies_when`` reads alone
        (without scoring the lead); None when that choice can depend on the lead's account (an
        ``applies_when`` or an extractor reads an account signal) or its signals cannot be had."""
        if not self.composer.conditional:
            return self.composer.always
        if self._selection_reads_account:
            return None
        ctx = self._selection_ctx.get(as_of)
        if ctx is None:
            ctx = self._selection_ctx.put(as_of, ExtractContext(as_of, self.vocabulary, self.selection_signals))
        try:
            lead = _in_time_order(lead)
            values = {s.name: s.value for ex in self._selection_extractors for s in ex.fn(lead, ctx)}
        except Exception:  # scoring the lead reports its problem
            return None
        return self.composer.select(values) or None

    def _values(self, lead: Lead, when: datetime) -> dict[str, Any]:
        """The contact signals an account summary needs (extractors may skip everything else)."""
        ctx = self._contact_ctx.get(when)
        if ctx is None:
            ctx = self._contact_ctx.put(when, ExtractContext(when, self.vocabulary, self.contact_signals))
        return {s.name: s.value for ex in self.contact_extractors for s in ex.fn(lead, ctx)}

    def account_cards(self, index: AccountIndex) -> Iterator[AccountCard]:
        """Second-pass roll-up: one AccountCard per account, ordered by account id."""
        config = self.account_config
        strategy = self.strategies[config["rollup"]]
        bands = [(name, minimum) for name, minimum in config.get("bands", [])]
        for key in sorted(index.accounts):
            yield account_card(index.accounts[key], config["rollup"], strategy, config, bands)

    def score(self, leads: Iterable[Lead | Rejection], as_of: datetime | None = None,
              accounts: AccountIndex | None = None) -> Iterator[ScoreCard | Rejection]:
        """Score a stream of leads; rejections pass through, a failing lead becomes a Rejection.

        With ``accounts`` (from :meth:`build_accounts` over the same leads), rules see each
        lead's ``account.*`` signals and the index records the scored contacts for roll-up.
        With a share band (``min = "top 5%"``), :meth:`resolve_shares` must have run first.
        """
        when = self._resolve_as_of(as_of)
        if self.needs_shares and not self.band_minimums:
            raise ConfigurationError("bands", "a band's min is a share of leads (\"top N%\"), which needs every lead "
                                     "scored once first", "call Engine.resolve_shares(leads) before Engine.score "
                                     "(leadscore score and explain do)")
        if self.columnar:
            scorer = self.columnar_scorer(when)
            if scorer is not None:
                from leadscore.columnar.run import score_batches

                yield from score_batches(self, scorer, leads, when, accounts)
                return
        if self.backend_name == "spark":
            from leadscore import spark

            if accounts is not None:
                raise ConfigurationError("accounts=", "on Spark the account pass runs on the executors, over the "
                                         "leads given", "leave out accounts= (Engine.build_accounts is not needed)")
            yield from spark.score_leads(self.spark_session(), leads, self, as_of=when)
            return
        for item in leads:
            yield self.score_item(item, when, accounts)

    def spark_session(self) -> Any:
        """The Spark session of ``backend="spark"``: the one given, else a local one (``local[*]``)."""
        if self.backend_name != "spark":
            raise ConfigurationError("backend", f"the {self.backend_name} engine runs in this process, not on Spark",
                                     "use Engine(backend='spark')")
        if self.spark is None:
            from leadscore import spark

            self.spark = spark.session()
        return self.spark

    def score_files(self, paths: Sequence[str], **options: Any) -> Iterator[Any]:
        """Score the JSON Lines, CSV or Parquet files behind ``paths`` (files, globs, directories of
        part files) on Spark, as ``leadscore score --engine spark`` does: cards as their JSON line
        and rejections, in input order. ``options`` are :func:`leadscore.spark.score_files`'s
        (``explain``, ``activities``, ...)."""
        from leadscore import spark

        return spark.score_files(self.spark_session(), paths, self, **options)

    def write_part_files(self, paths: Sequence[str], directory: str, **options: Any) -> Iterator[Rejection]:
        """Score ``paths`` on Spark and write the cards as JSON Lines part files into ``directory``;
        yields the rejections (see :func:`leadscore.spark.write_part_files`)."""
        from leadscore import spark

        return spark.write_part_files(self.spark_session(), paths, self, directory, **options)

    def score_item(self, item: Lead | Rejection, when: datetime,
                   accounts: AccountIndex | None = None) -> ScoreCard | Rejection:
        """One lead by the python engine (the reference): its card, or the rejection its failure makes."""
        if isinstance(item, Rejection):
            return item
        try:
            if accounts is None:
                return self._score(item, when, None)[0]
            key = account_key(item)
            card, values = self._score(item, when, accounts.signals_for(key))
            accounts.record(key, item, card, values)
            return card
        except RuntimeError as err:
            return Rejection(f"lead {item.id}", f"could not be scored: {err}", item.id)
        except Exception as err:  # a plugin failing on one lead must not lose the others
            return Rejection(f"lead {item.id}", f"could not be scored: {type(err).__name__}: {err}", item.id)

    def columnar_scorer(self, when: datetime, *, explain: bool = True, top: int = 3, values: bool = True,
                        render: str | None = None) -> Any:
        """The run's compiled columnar plan for ``when``, or None when some part of the run has no
        columnar form (then every lead is scored by the python engine, with the same result).

        ``values``: cards come with the leads' signal values (routers and the account roll-up read them).
        ``render`` (jsonl, csv or parquet): scored leads come as their text (their row, for parquet)
        in that output format (see leadscore.columnar.render).
        """
        key = (when, explain, top, values, render)
        if key not in self._scorers:
            from leadscore.columnar.conditions import Unsupported
            from leadscore.columnar.engine import ColumnarScorer

            try:
                self._scorers[key] = ColumnarScorer(self, when, explain=explain, top=top, values=values,
                                                    render=render, memory_limit=self.memory_limit)
            except Unsupported as err:
                self.columnar_note = str(err)
                self._scorers[key] = None
        return self._scorers[key]

    def close(self) -> None:
        for scorer in getattr(self, "_scorers", {}).values():
            if scorer is not None:
                scorer.close()
        getattr(self, "_scorers", {}).clear()
        if self.contact_matcher is not None:
            self.contact_matcher.close()
            self.contact_matcher = None
        for _, matcher in self._matchers.values():
            matcher.close()
        self._matchers.clear()
        self.backend.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _declared_account_reads(functions: Iterable[tuple[str, Any]],
                            packs: frozenset[str] | None = None) -> tuple[set[str], list[str]]:
    """(the ``account.*`` signals the functions declare they read, the names of those declaring
    nothing). ``packs``: only what they read for a lead scored with that combination (None: for
    any lead)."""
    found: set[str] = set()
    undeclared = []
    for what, fn in functions:
        reads = declared_reads(fn)
        if reads is None:
            undeclared.append(what)
        else:
            names = reads.all() if packs is None else reads.for_packs(packs)
            found.update(n for n in names if n.startswith("account."))
    return found, undeclared


def _extractors_for(extractors: Sequence[SignalExtractor], names: frozenset[str]) -> tuple[SignalExtractor, ...]:
    """The extractors that declare one of ``names``, in their order (later ones still override
    earlier ones). Every extractor when one of the names is declared by none, and always the
    extractors that declare nothing: what they yield is unknown."""
    chosen, covered = [], set()
    for ex in extractors:
        patterns = [re.compile("^" + re.escape(spec.name).replace(r"\*", "[^.]+") + "$") for spec in ex.provides]
        found = {name for name in names if any(p.match(name) for p in patterns)}
        if found or not ex.provides:
            chosen.append(ex)
            covered |= found
    return tuple(chosen) if covered == names else tuple(extractors)


def score(
    leads: Iterable[Lead | Rejection],
    rulepacks: Sequence[str | Path] | None = None,
    as_of: datetime | None = None,
    plugins: PluginManager | None = None,
    backend: str = "python",
) -> Iterator[ScoreCard | Rejection]:
    """Score leads in one call: ``for card in leadscore.score(leads, as_of=...)``.

    Gives the same cards as ``leadscore score``: when a rulepack reads ``account.*`` signals,
    every lead is grouped into its account before any is scored, so ``leads`` is read into a
    list first (for inputs too large for memory, call :meth:`Engine.build_accounts` on one pass
    over the input and :meth:`Engine.score` on a second, as the command line does).
    """
    with Engine(plugins=plugins, rulepacks=rulepacks, backend=backend, as_of=as_of) as engine:
        accounts = None
        if engine.needs_accounts or engine.needs_shares:
            leads = leads if isinstance(leads, Sequence) else list(leads)
        if engine.needs_accounts:
            accounts = engine.build_accounts(leads)
        if engine.needs_shares:
            engine.resolve_shares(leads, accounts=accounts)
        yield from engine.score(leads, accounts=accounts)
