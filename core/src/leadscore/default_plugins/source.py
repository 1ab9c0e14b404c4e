"""Lead source and CRM fields: where the lead came from, how old it is, and custom fields as signals.

Signals: ``lead.source`` (as given, lower case), ``lead.channel`` (paid_search, paid_social,
organic_search, organic_social, email, referral, partner, event, content_syndication, outbound,
direct, other), ``lead.age_days`` (days since ``created_at`` at the scoring time) and
``fields.<name>`` for each custom CRM field (``fields.budget_confirmed``...).
A rulepack maps more source names with ``[vocabulary.source_channels] "g2" = "referral"``.
"""

from __future__ import annotations

from typing import Any

from leadscore.hookspecs import hookimpl
from leadscore.model import ExtractContext, Lead, Signal, SignalExtractor, SignalSpec, day_text

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


# Sources and custom field values repeat from lead to lead; their immutable Signal records are
# reused (bounded caches, cleared when full). The channel table is part of the source key.
_SOURCES: dict[tuple[str, int], tuple[object, tuple[Signal, Signal]]] = {}
_FIELDS: dict[tuple[str, type, Any], Signal] = {}
_CACHE_LIMIT = 4096


def _source_signals(source_text: str, extra: dict | None) -> tuple[Signal, Signal]:
    key = (source_text, id(extra))
    hit = _SOURCES.get(key)
    # The entry keeps its channel table alive, so a matching id is always the same table.
    if hit is None or hit[0] is not extra:
        if len(_SOURCES) >= _CACHE_LIMIT:
            _SOURCES.clear()
        source = "_".join(source_text.lower().replace("-", " ").split())
        hit = _SOURCES[key] = (extra, (Signal("lead.source", source, None, source_text),
                                       Signal("lead.channel", channel_of(source, extra), None, source_text)))
    return hit[1]


def _field_signal(name: str, value: Any) -> Signal:
    kind = type(value)
    if kind is not str and kind is not bool and kind is not int:  # floats (-0.0 == 0.0) and the rest
        return Signal("fields." + name, value, None, f"{name}={value}")
    key = (name, kind, value)  # the type keeps True and 1 apart
    found = _FIELDS.get(key)
    if found is None:
        if len(_FIELDS) >= _CACHE_LIMIT:
            _FIELDS.clear()
        found = _FIELDS[key] = Signal("fields." + name, value, None, f"{name}={value}")
    return found


def extract(lead: Lead, ctx: ExtractContext) -> list[Signal]:
    out: list[Signal] = []
    if lead.source:
        out.extend(_source_signals(lead.source, ctx.vocabulary.get("source_channels")))
    created_at = lead.created_at
    if created_at is not None:
        age = (ctx.as_of - created_at).total_seconds() / 86400.0
        out.append(Signal("lead.age_days", round(age, 3), created_at, f"created {day_text(created_at)}"))
    wanted = ctx.wanted
    for name, value in lead.fields.items():
        if value is not None and (wanted is None or "fields." + name in wanted):
            out.append(_field_signal(name, value))
    return out


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("crm", extract, PROVIDES, __doc__ or "")]
