"""Named-account tiers: which accounts sales has chosen to pursue, from the CRM and from a target-account list.

Signal ``enterprise.account_tier``: ``strategic``, ``target`` or ``none``. Two sources, the higher
tier winning (strategic above target):

- the CRM's ``company.tier``, when it says ``strategic`` or ``target`` (any case; other values such
  as "tier 3" are not a named tier);
- the rulepacks' ``[vocabulary] target_accounts``: the ABM list, one string per account, either
  ``"domain"`` (a target account) or ``"domain=tier"`` with tier ``strategic`` or ``target``::

      [vocabulary]
      target_accounts = ["quillstone-analytics.com=strategic", "larkspurhealth.com"]

  A lead matches by its company domain or its business email domain, subdomains included
  (``eu.quillstone-analytics.com`` matches ``quillstone-analytics.com``). A domain listed twice
  keeps its higher tier. A malformed entry stops scoring with a message naming it: a silently
  ignored ABM entry would send a strategic account's buyer to the nurture queue.

The list is not shipped with the plugin (every sales team has its own): put it in your own
rulepack. Keep one list: when several packs define ``target_accounts``, the one loaded last wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from leadscore.plugin import ExtractContext, Lead, Signal, SignalSpec, classify_email, per_vocabulary, reads_signals

TIERS = ("strategic", "target")
RANK = {"none": 0, "target": 1, "strategic": 2}
TIER_SIGNAL = "enterprise.account_tier"

PROVIDES = (
    SignalSpec(TIER_SIGNAL, "str", "named-account tier from company.tier and [vocabulary] target_accounts",
               ("strategic", "target", "none")),
)


def _domain(text: str) -> str:
    return text.strip().lower().removeprefix("@").removeprefix("www.").rstrip(".")


def parse_target_accounts(entries: Iterable[Any]) -> dict[str, str]:
    """``["acme.example=strategic", "beta.example"]`` -> ``{"acme.example": "strategic", "beta.example": "target"}``."""
    table: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"[vocabulary] target_accounts entry {entry!r} is not a string; "
                             f'write "acme.example" or "acme.example=strategic"')
        raw_domain, sep, raw_tier = entry.partition("=")
        domain = _domain(raw_domain)
        tier = raw_tier.strip().lower() if sep else "target"
        if not domain or "." not in domain or " " in domain or "/" in domain:
            raise ValueError(f"[vocabulary] target_accounts entry {entry!r}: {raw_domain.strip()!r} is not a domain; "
                             f'write "acme.example" or "acme.example=strategic"')
        if tier not in TIERS:
            raise ValueError(f"[vocabulary] target_accounts entry {entry!r}: tier {raw_tier.strip()!r} is not "
                             f"strategic or target; write \"{domain}=strategic\" or \"{domain}=target\"")
        if RANK[tier] > RANK[table.get(domain, "none")]:
            table[domain] = tier
    return table


def target_accounts(vocabulary: Mapping[str, Any]) -> dict[str, str]:
    """The vocabulary's ``target_accounts`` parsed, once per vocabulary object (ABM lists run to thousands)."""
    return _target_tables(vocabulary)


def _parse_vocabulary(vocabulary: Mapping[str, Any]) -> dict[str, str]:
    return parse_target_accounts(vocabulary.get("target_accounts") or ())


_target_tables = per_vocabulary(_parse_vocabulary)


def listed_tier(domain: str, table: Mapping[str, str]) -> tuple[str, str] | None:
    """(tier, listed domain) for ``domain`` or the closest parent domain on the list."""
    parts = domain.split(".")
    for start in range(len(parts) - 1):
        candidate = ".".join(parts[start:])
        tier = table.get(candidate)
        if tier is not None:
            return tier, candidate
    return None


def account_tier(lead: Lead, vocabulary: Mapping[str, Any]) -> tuple[str, str]:
    """(tier, evidence) for a lead."""
    best, evidence = "none", "not a named account (no strategic/target CRM tier, not on target_accounts)"
    crm = (lead.company.tier or "").strip().lower()
    if crm in TIERS:
        best, evidence = crm, f"CRM tier {lead.company.tier}"
    table = target_accounts(vocabulary)
    if table:
        domains = []
        if lead.company.domain:
            domains.append(_domain(lead.company.domain))
        if lead.email:
            kind, email_domain = classify_email(lead.email)
            if kind == "business":
                domains.append(email_domain)
        for domain in domains:
            hit = listed_tier(domain, table)
            if hit is not None and RANK[hit[0]] > RANK[best]:
                best, evidence = hit[0], f"{hit[1]} is a {hit[0]} account on target_accounts"
    return best, evidence


@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    if ctx.wanted is not None and TIER_SIGNAL not in ctx.wanted:
        return
    tier, evidence = account_tier(lead, ctx.vocabulary)
    yield Signal(TIER_SIGNAL, tier, None, evidence)


def columnar(ctx):
    """The tier signal for a batch of leads, as SQL (the columnar engine's form of :func:`extract`).

    The CRM tier is SQL; with a target-account list, each lead's domains are looked up by
    :func:`account_tier` itself, once per distinct (tier, company domain, email).
    """
    from leadscore.columnar.api import emit, q
    from leadscore.plugin import Company

    if TIER_SIGNAL not in ctx.wanted:
        return None
    vocabulary = ctx.vocabulary
    tier, domain, email = q.col("c_tier"), q.col("c_domain"), q.col("email")
    if target_accounts(vocabulary):
        def lookup(crm, company_domain, address):
            found = account_tier(Lead("-", email=address, company=Company(domain=company_domain, tier=crm)), vocabulary)
            return {"tier": found[0], "evidence": found[1]}

        fn = ctx.udf("ls_enterprise_tier", lookup, ("VARCHAR", "VARCHAR", "VARCHAR"),
                     "STRUCT(tier VARCHAR, evidence VARCHAR)", nulls=True)
        row = fn(tier, domain, email)
        value, evidence = q.field(row, "tier"), q.field(row, "evidence")
    else:
        # In SQL (portable=) for an exported query, which trusts printable ASCII only: strip() is a trim there.
        crm = ctx.udf("ls_enterprise_crm", lambda raw: (raw or "").strip().lower(), ("VARCHAR",), "VARCHAR",
                      nulls=True, portable=lambda raw: q.fn("lower", q.fn("trim", q.coalesce(raw, q.lit("")))))(tier)
        named = q.in_(crm, TIERS)
        value = q.case([(named, crm)], q.lit("none"))
        evidence = q.case([(named, q.concat(q.lit("CRM tier "), tier))],
                          q.lit("not a named account (no strategic/target CRM tier, not on target_accounts)"))
    return q.select(q.col("k"), *emit(TIER_SIGNAL, value, None, evidence)).from_(q.table(ctx.leads))
