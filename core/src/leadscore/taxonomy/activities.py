"""Activity types and their intent tiers: the documented vocabulary of what a lead can do.

Shared by the activity signal extractor, the rulepack loader (which checks ``activity.<type>.*``
names against the known types) and plugins (through :mod:`leadscore.plugin`). Unknown types are
kept, in tier ``other``; a rulepack adds types to tiers with
``[vocabulary.activity_tiers] high = ["roi_calculator"]``. docs/activities.md is the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadscore.caching import per_vocabulary

ACTIVITY_TIERS: dict[str, tuple[str, ...]] = {
    "email": ("email_open", "email_click", "email_reply"),
    "low": ("page_view", "blog_visit", "social_engagement", "ad_click", "chat_started"),
    "medium": ("content_download", "webinar_registration", "webinar_attendance", "event_registration",
               "event_attendance", "form_submission", "video_view", "newsletter_signup", "repeat_visit"),
    "high": ("pricing_page_visit", "comparison_page_visit", "service_page_visit", "case_study_view",
             "integration_page_visit", "roi_calculator_use", "security_page_visit"),
    "readiness": ("demo_request", "contact_sales", "trial_signup", "meeting_booked", "quote_request"),
    "negative": ("unsubscribe", "email_bounce", "spam_complaint"),
}
TIERS = (*ACTIVITY_TIERS, "other")
# Tiers made of other tiers: every activity, and every activity beyond email and negative ones.
AGGREGATE_TIERS = ("any", "beyond_email")
KNOWN_TYPES = tuple(t for types in ACTIVITY_TIERS.values() for t in types)


def tier_table(vocabulary: Mapping[str, Any]) -> dict[str, str]:
    """Activity type -> tier, with a rulepack's ``activity_tiers`` taking precedence."""
    table = {t: tier for tier, types in ACTIVITY_TIERS.items() for t in types}
    for tier, types in (vocabulary.get("activity_tiers") or {}).items():
        for t in types:
            table[t] = tier
    return table


tiers_for = per_vocabulary(tier_table)
""":func:`tier_table` for a run's vocabulary, built once per vocabulary object."""


__all__ = ["ACTIVITY_TIERS", "AGGREGATE_TIERS", "KNOWN_TYPES", "TIERS", "tier_table", "tiers_for"]
