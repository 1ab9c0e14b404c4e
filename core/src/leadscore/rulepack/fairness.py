"""Rules that read a protected attribute, or a known proxy for one: flagged by ``leadscore check``.

Sales priority is not a hiring or credit decision, but a score that ranks people by gender, age,
ethnicity, religion, nationality, family status or disability (or by a stand-in such as postcode
or first name) treats them differently for what they are, which equality and data-protection law in
many places forbids or restricts (for example the EU GDPR's special categories of data, and the
protected characteristics of the UK Equality Act 2010 and US civil-rights law). A team may have a
good reason (a pack for a women-in-tech event, a regional sales territory by postcode): it says so
on the rule with ``fairness = "reviewed: <why>"``, which silences the warning and is shown by
``explain``. A pack adds attributes with ``[fairness] protected = { name = ["word", ...] }`` and
drops a default one with ``[fairness] exempt = ["name"]``.

Signals are matched by the words of their last dotted segment (``fields.date_of_birth`` reads
``date``, ``of``, ``birth``). The core's own signal families (activity, intent, email, title,
company, lead, account) hold none of these and are not checked; custom fields (``fields.*``), the
activity being scored (``event.*``) and plugins' signals are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import frozen

from leadscore.rulepack.schema import Condition, Rulepack

REVIEWED = "reviewed:"
# The core's signal families: documented, and none of them is a personal characteristic.
CORE_FAMILIES = ("activity.", "intent.", "email.", "title.", "company.", "lead.", "account.")


@frozen
class Attribute:
    """A protected attribute or proxy: the words that name it in a signal, and why it matters."""

    name: str
    words: tuple[str, ...]
    why: str


_LAW = "a protected characteristic in equality law in many places (EU, UK, US)"
DEFAULT_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("gender", ("gender", "sex", "pronoun", "pronouns", "salutation"), _LAW),
    Attribute("age", ("age", "birth", "birthday", "birthdate", "dob", "born", "birthyear"),
              f"{_LAW}; age discrimination law covers older and younger people alike"),
    Attribute("race or ethnicity", ("race", "racial", "ethnicity", "ethnic", "skin"),
              f"{_LAW}, and special-category data under the GDPR"),
    Attribute("religion", ("religion", "religious", "faith", "belief", "beliefs", "church", "caste"),
              f"{_LAW}, and special-category data under the GDPR"),
    Attribute("nationality or citizenship", ("nationality", "citizenship", "citizen", "immigration", "visa",
                                             "passport", "national_origin"),
              f"{_LAW} (national origin); a company's country is fine, a person's nationality is not"),
    Attribute("marital or family status", ("marital", "married", "spouse", "pregnant", "pregnancy", "maternity",
                                           "paternity", "children", "kids", "family_status"), _LAW),
    Attribute("disability", ("disability", "disabled", "handicap", "impairment", "wheelchair"),
              f"{_LAW}, and health data is special-category data under the GDPR"),
    Attribute("sexual orientation", ("sexual_orientation", "orientation", "lgbt", "lgbtq"),
              f"{_LAW}, and special-category data under the GDPR"),
    Attribute("postcode or ZIP (a proxy)", ("zip", "zipcode", "zip_code", "postcode", "postal", "postal_code"),
              "residential postcode stands in for race and income (redlining); score the company's region instead"),
    Attribute("first name (a proxy)", ("first_name", "firstname", "given_name", "forename"),
              "first names stand in for gender and ethnicity"),
    Attribute("photo (a proxy)", ("photo", "picture", "headshot", "avatar", "selfie"),
              "a photo reveals race, age and gender"),
)


@frozen
class FairnessWarning:
    where: str
    pack: str
    subject: str
    signal: str
    attribute: Attribute

    def line(self) -> str:
        return (f"{self.where}: warning: {self.subject} reads {self.signal!r}, {self.attribute.name}: "
                f"{self.attribute.why}; remove it, or if the team has reviewed it write "
                f'fairness = "reviewed: <why>" on the rule')


def attributes_for(packs: Iterable[Rulepack]) -> tuple[Attribute, ...]:
    """The defaults, plus the ``protected`` attributes of the packs' ``[fairness]`` tables, minus their ``exempt``."""
    extra: dict[str, tuple[str, ...]] = {}
    exempt: set[str] = set()
    for pack in packs:
        for name, words in (pack.fairness.get("protected") or {}).items():
            extra[name] = tuple(w.lower() for w in words)
        exempt.update(pack.fairness.get("exempt") or ())
    found = [a for a in DEFAULT_ATTRIBUTES if a.name not in exempt]
    found += [Attribute(name, words, "declared protected in the rulepack's [fairness] table")
              for name, words in sorted(extra.items()) if name not in exempt]
    return tuple(found)


def _words(signal: str) -> tuple[str, set[str]]:
    segment = signal.rsplit(".", 1)[-1].lower()
    return segment, set(re.split(r"[_\-\s]+", segment))


def reads(signal: str, attributes: Sequence[Attribute]) -> Attribute | None:
    """The attribute a signal name reads, if any (core signal families are never flagged)."""
    if signal.startswith(CORE_FAMILIES):
        return None
    segment, words = _words(signal)
    for attribute in attributes:
        for word in attribute.words:
            if word in words or ("_" in word and word in segment):
                return attribute
    return None


def _signals(cond: Condition | None) -> list[str]:
    return sorted(cond.signals()) if cond is not None else []


def check_fairness(packs: Sequence[Rulepack], attributes: Sequence[Attribute] | None = None) -> list[FairnessWarning]:
    """Warnings for every rule, ``applies_when`` and gate of ``packs`` that reads a protected attribute,
    except rules marked ``fairness = "reviewed: ..."``."""
    chosen = attributes_for(packs) if attributes is None else tuple(attributes)
    warnings = []
    for pack in packs:
        subjects: list[tuple[str, int, list[str]]] = []
        if pack.applies_when is not None:
            subjects.append(("applies_when", 1, _signals(pack.applies_when)))
        for rule in pack.rules:
            if not rule.fairness:
                signals = _signals(rule.when)
                subjects.append((f"rule {rule.id!r}", rule.line, signals))
        for band in pack.bands:
            subjects.append((f"band {band.name!r} requires", 1, _signals(band.requires)))
        for subject, start, signals in subjects:
            for signal in signals:
                attribute = reads(signal, chosen)
                if attribute is not None:
                    warnings.append(FairnessWarning(pack.where(start, signal), pack.name, subject, signal, attribute))
    return warnings


def reviews(packs: Iterable[Rulepack]) -> dict[str, str]:
    """Rule id -> the team's fairness review of it (the text after ``reviewed:``)."""
    return {rule.id: rule.fairness for pack in packs for rule in pack.rules if rule.fairness}


def parse_review(value: Any) -> str:
    """The reason in ``fairness = "reviewed: <why>"``; ValueError saying what to write otherwise."""
    if not isinstance(value, str) or not value.strip().lower().startswith(REVIEWED) \
            or not value.strip()[len(REVIEWED):].strip():
        raise ValueError(f'fairness must be "reviewed: <why the team accepts this rule>", not {value!r}')
    return value.strip()[len(REVIEWED):].strip()


def check_config(raw: Any) -> Mapping[str, Any]:
    """Validate a pack's ``[fairness]`` table; ValueError naming what to write otherwise."""
    if not isinstance(raw, Mapping):
        raise ValueError('[fairness] must be a table: protected = { name = ["word", ...] }, exempt = ["name"]')
    for key in raw:
        if key not in ("protected", "exempt"):
            raise ValueError(f"unknown key `{key}` in [fairness]; use protected or exempt")
    protected = raw.get("protected", {})
    if not isinstance(protected, Mapping) or not all(
            isinstance(words, list) and words and all(isinstance(w, str) and w.strip() for w in words)
            for words in protected.values()):
        raise ValueError('[fairness] protected must map each attribute to a list of words, e.g. '
                         'protected = { "union membership" = ["union", "trade_union"] }')
    exempt = raw.get("exempt", [])
    if not isinstance(exempt, list) or not all(isinstance(e, str) for e in exempt):
        raise ValueError('[fairness] exempt must be a list of attribute names, e.g. exempt = ["photo (a proxy)"]')
    known = {a.name for a in DEFAULT_ATTRIBUTES} | set(protected)
    for name in exempt:
        if name not in known:
            raise ValueError(f"[fairness] exempt names {name!r}, which is no attribute; use one of "
                             f"{', '.join(sorted(known))}")
    return dict(raw)
