"""A score card rendered for a sales rep: every ledger line with its reason, decay, cap and pack."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from leadscore.io.timestamps import format_timestamp
from leadscore.model import Lead, Rejection, ScoreCard
from leadscore.rulepack.fields import misfit_fields
from leadscore.rulepack.schema import Rulepack
from leadscore.text import printable

_KIND_LABEL = {"frequency_cap": "frequency", "rule_cap": "rule cap", "category_cap": "category cap",
               "total_cap": "total cap"}


def band_observed_conversion(card: ScoreCard, packs: Iterable[Rulepack]) -> float | None:
    """The conversion rate the card's band states (``observed_conversion``), from the most specific
    of the card's packs that defines the band; None when the band states none."""
    applied = {name for name, _ in card.packs}
    found = None
    for pack in packs:  # lowest priority first, so the last match is the most specific
        if pack.name in applied:
            for band in pack.bands:
                if band.name == card.band:
                    found = band.observed_conversion
    return found


def unknown_activity_types(lead: Lead, known: Collection[str]) -> dict[str, int]:
    """The lead's activity types that no rulepack of the run knows, with how often each occurs."""
    counts: dict[str, int] = {}
    for kind in lead.activities.types:
        if kind not in known:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def count_unscored(lead: Lead, known: AbstractSet[str], declared: Mapping[str, tuple[str, Any]] | None,
                   unknown_types: Counter[str] | None, misfits: Counter[tuple[str, str]] | None) -> None:
    """Add what of ``lead`` gave no signal, as ``leadscore score`` reports it after a run: each
    activity whose type is not in ``known`` (the run's vocabulary) to ``unknown_types`` by type, and
    each custom field whose value cannot be read as the type a pack ``declared`` for it to
    ``misfits`` by (field, type), once per lead. Either counter may be None (not counted)."""
    acts = lead.activities
    # One C-level check per lead; the per-activity loop runs only for a lead with an unknown type.
    if unknown_types is not None and acts and not known.issuperset(acts.types):
        unknown_types.update(kind for kind in acts.types if kind not in known)
    if misfits is not None and declared and lead.fields:
        misfits.update(misfit_fields(lead.fields, declared).items())


def did_you_mean(kind: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(kind, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def render_explanation(card: ScoreCard, lead: Lead | None = None, reviews: Mapping[str, str] | None = None,
                       observed_conversion: float | None = None, unknown: dict[str, int] | None = None,
                       left_out: Sequence[Rejection] = (), known: Collection[str] = (),
                       misfits: Mapping[str, str] | None = None) -> str:
    """The card as text; ``reviews`` (rule id -> text) are the fairness reviews of rules that scored;
    ``observed_conversion`` is the band's stated conversion rate, when it has one; ``unknown``
    (activity type -> count), ``left_out`` (activities the reader could not use) and ``misfits``
    (custom field -> the declared type its value does not fit) are listed after the ledger, so a
    lead never loses points unexplained."""
    lines = []
    who = ""
    if lead is not None:
        parts = [p for p in (lead.title, lead.company.name, lead.email) if p]
        who = f"  ({', '.join(parts)})" if parts else ""
    lines.append(f"Lead {card.lead_id}{who}")
    lines.append(f"Score {card.total} -> {card.band}   as of {format_timestamp(card.as_of)}")
    if observed_conversion is not None:
        lines.append(f"Band {card.band}: {observed_conversion:.1%} of its leads converted when the pack was measured "
                     f"(observed_conversion)")
    lines.append("Sub-scores: " + ", ".join(f"{name} {points:+d}" for name, points in card.subscores))
    lines.append("Rulepacks: " + ", ".join(f"{name} {version}" for name, version in card.packs))
    if card.route is not None:
        sla = f", within {card.route.sla_hours:g} h" if card.route.sla_hours else ""
        queue = f" ({card.route.queue})" if card.route.queue else ""
        lines.append(f"Next step: {card.route.action}{queue}{sla}: {card.route.reason}")
    lines.append("")
    header = f"{'points':>6}  {'raw':>4}  {'decay':<16}  {'rule':<30}  {'pack':<16}  reason"
    lines.append(header)
    lines.append("-" * len(header))
    for c in card.ledger:
        if c.kind == "rule":
            decay = "-" if c.decay == "none" else f"{c.decay} x{c.decay_factor:.2f}"
            raw = f"{c.raw_points:+d}"
        else:
            decay = _KIND_LABEL.get(c.kind, c.kind)
            raw = ""
        evidence = f"  [{c.evidence}]" if c.evidence else ""
        lines.append(f"{c.points:>+6d}  {raw:>4}  {decay:<16}  {c.rule_id:<30}  {c.pack:<16}  {c.reason}{evidence}")
    lines.append("-" * len(header))
    lines.append(f"{card.total:>+6d}  total (the lines above add up to it exactly)")
    if card.gate_notes:
        lines.append("")
        lines.append(f"By points alone this lead would be {card.points_band}; gates held it at {card.band}:")
        lines.extend(f"  - {note}" for note in card.gate_notes)
    if reviews:
        lines.append("")
        lines.append("Rules that read a protected attribute, reviewed by the team:")
        lines.extend(f"  - {rule_id}: {text}" for rule_id, text in sorted(reviews.items()))
    if unknown:
        lines.append("")
        lines.append("Activities of types no rulepack knows (they scored nothing):")
        lines.extend(f"  - {kind} x{count}{did_you_mean(kind, known)}" for kind, count in sorted(unknown.items()))
    if left_out:
        lines.append("")
        lines.append("Activities left out because they did not fit:")
        lines.extend(f"  - {rej.where}: {rej.reason}" for rej in left_out)
    if misfits:
        lines.append("")
        lines.append("Custom fields whose value does not fit the type declared in [fields] (they scored nothing):")
        lines.extend(f"  - fields.{name}: not {'an' if kind == 'int' else 'a'} {kind}"
                     for name, kind in sorted(misfits.items()))
    # Each line is escaped on its own: a line break inside a title or reason stays in its line.
    return "\n".join(printable(line) for line in lines)
