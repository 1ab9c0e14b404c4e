"""Hook specifications for leadscore plugins, implemented by the built-ins and by installed plugins.

Registry hooks run once when the plugin manager is built; the per-lead hot path only calls the
plain functions they returned. Implementations import ``hookimpl`` from ``leadscore``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy
from attrs import evolve, frozen

PROJECT = "leadscore"
F = TypeVar("F", bound=Callable[..., Any])

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marker for hook implementations, used by plugins and by the core's own built-ins."""

READS_ATTRIBUTE = "leadscore_reads"


@frozen
class DeclaredReads:
    """What a plugin function declared with :func:`reads_signals`: the signals it reads for
    every lead, and those it reads only for the leads scored with one of some packs."""

    everywhere: frozenset[str] = frozenset()
    by_packs: tuple[tuple[frozenset[str], frozenset[str]], ...] = ()
    """(pack names, the signals read for a lead whose packs include one of them), per declaration."""
    compares: tuple[tuple[str, str, Any], ...] = ()
    """(signal, operator, value): the comparisons through which alone it reads those signals."""

    def comparisons(self, name: str) -> tuple[tuple[str, Any], ...] | None:
        """The (operator, value) comparisons through which alone it reads ``name``; None: it may
        use any value."""
        found = tuple((op, value) for signal, op, value in self.compares if signal == name)
        return found or None

    def all(self) -> frozenset[str]:
        """Every signal it may read, for some lead."""
        return self.everywhere.union(*(names for _, names in self.by_packs))

    def for_packs(self, packs: Collection[str]) -> frozenset[str]:
        """The signals it may read for a lead scored with the pack combination ``packs``."""
        return self.everywhere.union(*(names for scope, names in self.by_packs if not scope.isdisjoint(packs)))


# The comparisons a function may declare it reads a signal through (see reads_signals).
COMPARE_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between")


def reads_signals(*names: str, packs: str | Iterable[str] | None = None,
                  compares: Mapping[str, Mapping[str, Any]] | None = None) -> Callable[[F], F]:
    """Declare the signals a router, scorer or extractor function reads (``account.*`` ones matter).

    ``leadscore ingest`` rescores an account's other contacts when an account signal that the
    run reads moves. Rules, gates and ``applies_when`` say what they read; a plugin function can
    read any signal (a router or scorer from its ``signals``, an extractor from ``ctx.account``),
    so one without this declaration makes ingest rescore every contact whenever any account
    signal moves. An extractor that only hands ``ctx.account`` on unchanged (as the core's
    account extractor does) declares nothing: whoever reads those signals declares them.

    ``packs`` (a pack name or several): the function reads ``names`` only for the leads whose
    packs (``ctx["packs"]``) include one of them, and, for any other lead, answers without
    them, so ingest rescores a contact for these signals only when its own packs hold one of
    those. A router or scorer may say so; an extractor may not (it runs before a lead's packs
    are chosen). Declarations stack: a function decorated twice reads what both name.

    ``compares`` (signal name -> ``{operator: value}``, the operators of a rule's condition:
    eq, ne, lt, lte, gt, gte, in, not_in, between): what the function returns that a stored
    card holds (a route's action and queue, a score line's points) depends on that signal only
    through the truth of these comparisons, as a rule's does; ingest then rescores a contact for
    it only when one of them changes its truth. A text may still show the value (a route's
    reason): a contact scored again to the same total, band and route keeps its card anyway.

    Example::

        @hookimpl
        @reads_signals("account.senior_engaged_contacts", "intent.readiness.count_30d", packs="enterprise",
                       compares={"account.senior_engaged_contacts": {"gte": 2}})
        def leadscore_route_lead(card, lead, ctx):
            if "enterprise" not in ctx["packs"]:
                return None
            ...
    """
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"reads_signals: {name!r} is not a signal name; give names such as 'account.contacts'")
    scope = None if packs is None else frozenset([packs] if isinstance(packs, str) else packs)
    if scope is not None and (not scope or not all(isinstance(n, str) and n for n in scope)):
        raise TypeError(f"reads_signals: packs={packs!r} is not a pack name or a list of them; "
                        "give names such as packs=('enterprise',)")

    comparisons = tuple((name, op, _compared(name, op, value)) for name, ops in (compares or {}).items()
                        for op, value in _operators(name, ops))
    unread = sorted({name for name, _, _ in comparisons} - set(names))
    if unread:
        raise TypeError(f"reads_signals: compares names {unread[0]!r}, which it does not read; "
                        "list it among the signal names too")

    def mark(fn: F) -> F:
        before = declared_reads(fn) or DeclaredReads()
        before = evolve(before, compares=before.compares + comparisons)
        if scope is None:
            after = evolve(before, everywhere=before.everywhere | frozenset(names))
        else:
            after = evolve(before, by_packs=(*before.by_packs, (scope, frozenset(names))))
        setattr(fn, READS_ATTRIBUTE, after)
        return fn

    return mark


def _operators(name: str, ops: Any) -> list[tuple[str, Any]]:
    if not isinstance(ops, Mapping) or not ops or not all(op in COMPARE_OPS for op in ops):
        raise TypeError(f"reads_signals: compares[{name!r}] = {ops!r} is not a table of comparisons; "
                        f"give operators and values such as {{'gte': 2}} (operators: {', '.join(COMPARE_OPS)})")
    return list(ops.items())


def _compared(name: str, op: str, value: Any) -> Any:
    """The value as a rule's condition holds it (lists as tuples), checked for its operator."""
    if op in ("in", "not_in", "between"):
        if not isinstance(value, (list, tuple)) or (op == "between" and len(value) != 2):
            raise TypeError(f"reads_signals: compares[{name!r}][{op!r}] = {value!r} is not a list; give "
                            + ("[low, high]" if op == "between" else "a list of values"))
        return tuple(value)
    return value


def declared_reads(fn: Any) -> DeclaredReads | None:
    """What ``fn`` declared with :func:`reads_signals`, or None when it declared nothing."""
    found = getattr(fn, READS_ATTRIBUTE, None)
    return found if isinstance(found, DeclaredReads) else None

if TYPE_CHECKING:
    from leadscore.model import (
        DecayPolicy,
        Lead,
        RollupStrategy,
        Route,
        RulepackSource,
        ScoreCard,
        Scorer,
        SignalExtractor,
    )


@hookspec
def leadscore_signal_extractors() -> Iterable[SignalExtractor]:
    """Return the signal extractors this plugin provides.

    Called once per plugin manager. Each :class:`~leadscore.model.SignalExtractor` names a
    function ``fn(lead, ctx) -> Iterable[Signal]`` and declares the signals it provides
    (:class:`~leadscore.model.SignalSpec`), so rulepacks that use them validate at load time.
    Names must be unique across plugins; a duplicate is an error naming both plugins.

    :returns: an iterable of SignalExtractor records (may be empty).

    Example::

        @hookimpl
        def leadscore_signal_extractors():
            def fn(lead, ctx):
                yield Signal("crm.has_phone", bool(lead.fields.get("phone")))
            return [SignalExtractor("acme-crm", fn, provides=(SignalSpec("crm.has_phone", "bool"),))]
    """


@hookspec
def leadscore_rulepacks() -> Iterable[RulepackSource]:
    """Return the rulepacks this plugin ships.

    Each :class:`~leadscore.model.RulepackSource` points at a TOML file inside the plugin's
    package, read with ``importlib.resources`` (never a filesystem glob). Rulepack names must be
    unique across plugins.

    :returns: an iterable of RulepackSource records.

    Example::

        @hookimpl
        def leadscore_rulepacks():
            res = importlib.resources.files("leadscore_acme") / "rulepacks" / "acme.toml"
            return [RulepackSource("acme", res)]
    """


@hookspec
def leadscore_scorers() -> Iterable[Scorer]:
    """Return scoring functions that add ledger lines beside the rule engine.

    A :class:`~leadscore.model.Scorer` is ``fn(lead, signals, ctx) -> Iterable[ScoreLine]``; its
    lines are decayed, capped and explained exactly like rule matches. The rule engine itself is
    the built-in scorer ``rules``; a rulepack chooses its scorers with ``scorers = [...]``.

    :returns: an iterable of Scorer records.

    Example::

        @hookimpl
        def leadscore_scorers():
            def fn(lead, signals, ctx):
                if signals.get("crm.has_phone"):
                    yield ScoreLine("acme.phone", "fit", 5, "Gave a phone number")
            return [Scorer("acme-phone", fn)]
    """


@hookspec
def leadscore_decay_policies() -> Iterable[DecayPolicy]:
    """Return decay curve kinds that rulepacks can name in ``[decay.<name>] kind = ...``.

    A :class:`~leadscore.model.DecayPolicy` has ``make(params) -> factor(age_days)``; ``make``
    raises ValueError for bad params (reported at the rulepack's line). Factors lie in [0, 1],
    equal 1.0 at age 0 and never increase with age.

    :returns: an iterable of DecayPolicy records.

    Example::

        @hookimpl
        def leadscore_decay_policies():
            def make(params):
                days = float(params["days"])
                return lambda age: 1.0 if age < days else 0.5
            return [DecayPolicy("cliff", make, params=("days",))]
    """


@hookspec
def leadscore_rollup_strategies() -> Iterable[RollupStrategy]:
    """Return account roll-up strategies that rulepacks can choose in ``[accounts] rollup = ...``.

    A :class:`~leadscore.model.RollupStrategy` is ``fn(contacts, params) -> (score, reasons)``:
    ``contacts`` are the account's scored contacts (highest total first, at most 50) and
    ``params`` the rulepack's ``[accounts]`` table. Built-ins: ``sum_capped``, ``mean_scored``,
    ``role_weighted``.

    :returns: an iterable of RollupStrategy records.

    Example::

        @hookimpl
        def leadscore_rollup_strategies():
            def best_two(contacts, params):
                top = contacts[:2]
                return sum(c.total for c in top), [f"best two contacts: {len(top)}"]
            return [RollupStrategy("best_two", best_two)]
    """


@hookspec(firstresult=True)
def leadscore_route_lead(card: ScoreCard, lead: Lead, ctx: dict[str, Any]) -> Route | None:
    """Decide what should happen next for a scored lead.

    Stops at the first non-None result. The core's default router is registered ``trylast`` and
    maps the card's band to the composed rulepack's ``[routing.<band>]`` table, so a plugin that
    returns a :class:`~leadscore.model.Route` wins and one that returns None has no opinion.

    :param card: the lead's ScoreCard (its ``route`` is still None).
    :param lead: the lead that was scored.
    :param ctx: read-only context: ``routing`` (the composed ``[routing]`` table),
        ``packs`` (names of the applied rulepacks) and ``signals`` (name -> value).
    :returns: a Route, or None for no opinion.

    Example::

        @hookimpl
        def leadscore_route_lead(card, lead, ctx):
            if card.band == "sales_ready" and lead.company.tier == "strategic":
                return Route("page_account_executive", queue="strategic-ae", sla_hours=1)
            return None
    """


@hookspec
def leadscore_register_commands(cli: Any) -> None:
    """Add commands to the ``leadscore`` command line.

    Called once when the CLI is built from a plugin manager. (Typed ``Any`` so that the core does
    not depend on click; the CLI distribution does.)

    :param cli: the root ``click.Group``; call ``cli.add_command(...)`` or use ``@cli.command()``.

    Example::

        @hookimpl
        def leadscore_register_commands(cli):
            @cli.command()
            def hello():
                click.echo("hello from acme")
    """
