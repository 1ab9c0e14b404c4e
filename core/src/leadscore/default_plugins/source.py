"""Lead source and CRM fields: where the lead came from, how old it is, and custom fields as signals.

Signals: ``lead.source`` (as given, lower case), ``lead.channel`` (paid_search, paid_social,
organic_search, organic_social, email, referral, partner, event, content_syndication, outbound,
direct, other), ``lead.age_days`` (days since ``created_at`` at the scoring time) and
``fields.<name>`` for each custom CRM field (``fields.budget_confirmed``...).
A rulepack maps more source names with ``[vocabulary.source_channels] "g2" = "referral"``.
"""

from __future__ import annotations

from collections.abc import Iterator

from leadscore.hookspecs import hookimpl
from leadscore.model import ExtractContext, Lead, Signal, SignalExtractor, SignalSpec

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


def extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    if lead.source:
        source = "_".join(lead.source.lower().replace("-", " ").split())
        yield Signal("lead.source", source, None, lead.source)
        yield Signal("lead.channel", channel_of(source, ctx.vocabulary.get("source_channels")), None, lead.source)
    if lead.created_at is not None:
        age = (ctx.as_of - lead.created_at).total_seconds() / 86400.0
        yield Signal("lead.age_days", round(age, 3), lead.created_at, f"created {lead.created_at:%Y-%m-%d}")
    wanted = ctx.wanted
    for name, value in lead.fields.items():
        key = "fields." + name
        if value is not None and (wanted is None or key in wanted):
            yield Signal(key, value, None, f"{name}={value}")


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("crm", extract, PROVIDES, __doc__ or "")]
