"""Email signals: business vs personal, disposable, education or invalid; domain and its match to the company.

Signals: ``email.type`` (business, personal, disposable, education, invalid), ``email.domain``,
``email.is_business``, ``email.matches_company``, ``email.is_role`` (info@, sales@...),
``email.is_competitor`` (domain in the vocabulary's ``competitor_domains``). A lead with no email
gets none of them, so ``exists = false`` finds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadscore.caching import BoundedCache, per_vocabulary
from leadscore.default_plugins.extract.lazy import columnar
from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import ExtractContext, Lead, Signal, SignalExtractor, SignalSpec
from leadscore.taxonomy.email import ROLE_LOCAL_PARTS, classify, free_domains

PROVIDES = (
    SignalSpec("email.type", "str", "kind of address", ("business", "personal", "disposable", "education", "invalid")),
    SignalSpec("email.domain", "str", "the part after @, lower case"),
    SignalSpec("email.is_business", "bool", "a syntactically valid address on a company domain"),
    SignalSpec("email.matches_company", "bool", "the email domain is the company's domain (or a subdomain of it)"),
    SignalSpec("email.is_role", "bool", "a shared mailbox such as info@ or sales@"),
    SignalSpec("email.is_competitor", "bool", "the domain is in the vocabulary's competitor_domains"),
)


def _build_entry(vocabulary: Mapping[str, Any]) -> tuple[frozenset[str], Any, BoundedCache[str, str]]:
    """(free domains, competitor domains, domain verdicts for classify) of one vocabulary."""
    return free_domains(vocabulary), vocabulary.get("competitor_domains") or (), BoundedCache(20_000)


_entry = per_vocabulary(_build_entry)


@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> tuple[Signal, ...]:
    email = lead.email
    if not email:
        return ()
    email = email.strip().lower()  # readers already did this; records built in code may not have
    if not email:
        return ()
    free, competitors, verdicts = _entry(ctx.vocabulary)
    kind, domain = classify(email, free, verdicts)
    company_domain = (lead.company.domain or "").lower().removeprefix("www.")
    matches = bool(company_domain) and (domain == company_domain or domain.endswith("." + company_domain))
    return (
        Signal("email.type", kind, None, email),
        Signal("email.domain", domain, None, email),
        Signal("email.is_business", kind == "business", None, email),
        Signal("email.matches_company", matches, None, f"{domain} vs {company_domain or 'no company domain'}"),
        Signal("email.is_role", email.partition("@")[0] in ROLE_LOCAL_PARTS, None, email),
        Signal("email.is_competitor", domain in competitors, None, domain),
    )


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("email", extract, PROVIDES, __doc__ or "", columnar("email_columnar"))]
