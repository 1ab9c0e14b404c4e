"""Lead source and CRM fields: where the lead came from, how old it is, and custom fields as signals.

Signals: ``lead.source`` (as given, lower case), ``lead.channel`` (paid_search, paid_social,
organic_search, organic_social, email, referral, partner, event, content_syndication, outbound,
direct, other), ``lead.age_days`` (days since ``created_at`` at the scoring time) and
``fields.<name>`` for each custom CRM field (``fields.budget_confirmed``...).
A rulepack maps more source names with ``[vocabulary.source_channels] "g2" = "referral"``.
A field a pack declares in ``[fields]`` arrives as its declared type (``"40"`` for a number field
is 40); a value that cannot be read as that type gives no signal (docs/rulepacks.md, "Custom fields").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadscore.caching import BoundedCache, per_vocabulary
from leadscore.default_plugins.extract.lazy import columnar
from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import (
    ExtractContext,
    Lead,
    Signal,
    SignalExtractor,
    SignalSpec,
    day_text,
)
from leadscore.rulepack.fields import as_declared
from leadscore.rulepack.schema import CUSTOM_FIELDS

CHANNELS = {
    "google_ads": "paid_search", "adwords": "paid_search", "paid_search": "paid_search", "bing_ads": "paid_search",
    "ppc": "paid_search", "linkedin_ads": "paid_social", "facebook_ads": "paid_social", "paid_social": "paid_social",
    "twitter_ads": "paid_social", "organic_search": "organic_search", "seo": "organic_search",
    "organic": "organic_search", "linkedin": "organic_social", "social": "organic_social",
    "organic_social": "organic_social", "email": "email", "newsletter": "email", "referral": "referral",
    "customer_referral": "referral", "review_site": "referral", "g2": "referral", "capterra": "referral",
    "partner": "partner", "reseller": "partner", "event": "event", "trade_show": "event", "conference": "event",
    "webinar": "event", "content_syndication": "content_syndication", "syndication": "content_syndication",
    "outbound": "outbound", "cold_outreach": "outbound", "sdr_outbound": "outbound", "direct": "direct",
    "direct_traffic": "direct", "website": "direct", "inbound": "direct",
}
CHANNEL_VALUES = ("paid_search", "paid_social", "organic_search", "organic_social", "email", "referral", "partner",
                  "event", "content_syndication", "outbound", "direct", "other")

PROVIDES = (
    SignalSpec("lead.source", "str", "lead source as given, lower case with underscores"),
    SignalSpec("lead.channel", "str", "normalised acquisition channel", CHANNEL_VALUES),
    SignalSpec("lead.age_days", "number", "days from created_at to the scoring time"),
    SignalSpec("fields.*", "any", "a custom CRM field from the lead's `fields`"),
)


def channel_of(source: str, extra: dict | None = None) -> str:
    if extra and source in extra:
        return extra[source]
    return CHANNELS.get(source, "other")


def _source_table(vocabulary: Mapping[str, Any]) -> BoundedCache[str, tuple[Signal, Signal]]:
    return BoundedCache(4096)


# Sources and custom field values repeat from lead to lead; their immutable Signal records are
# reused. A source's channel depends on the vocabulary, so sources are remembered per vocabulary.
_sources = per_vocabulary(_source_table)
_FIELDS: BoundedCache[tuple[str, type, Any], Signal] = BoundedCache(4096)


def _source_signals(source_text: str, vocabulary: Mapping[str, Any]) -> tuple[Signal, Signal]:
    table = _sources(vocabulary)
    hit = table.get(source_text)
    if hit is None:
        source = "_".join(source_text.lower().replace("-", " ").split())
        channel = channel_of(source, vocabulary.get("source_channels"))
        hit = table.put(source_text, (Signal("lead.source", source, None, source_text),
                                      Signal("lead.channel", channel, None, source_text)))
    return hit


def _field_signal(name: str, value: Any) -> Signal:
    kind = type(value)
    if kind is not str and kind is not bool and kind is not int:  # floats (-0.0 == 0.0) and the rest
        return Signal("fields." + name, value, None, f"{name}={value}")
    key = (name, kind, value)  # the type keeps True and 1 apart
    found = _FIELDS.get(key)
    if found is None:
        found = _FIELDS.put(key, Signal("fields." + name, value, None, f"{name}={value}"))
    return found


@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> list[Signal]:
    out: list[Signal] = []
    if lead.source:
        out.extend(_source_signals(lead.source, ctx.vocabulary))
    created_at = lead.created_at
    if created_at is not None:
        age = (ctx.as_of - created_at).total_seconds() / 86400.0
        out.append(Signal("lead.age_days", round(age, 3), created_at, f"created {day_text(created_at)}"))
    wanted = ctx.wanted
    declared = ctx.vocabulary.get(CUSTOM_FIELDS)
    for name, value in lead.fields.items():
        if value is not None and (wanted is None or "fields." + name in wanted):
            if declared and name in declared:
                value = as_declared(value, declared[name][0])
                if value is None:
                    continue
            out.append(_field_signal(name, value))
    return out


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("crm", extract, PROVIDES, __doc__ or "", columnar("crm_columnar"))]
