"""Content-syndication signals: is the downloaded asset on one of our topics, and did the lead follow up?

A syndicated lead arrives because a publisher's audience downloaded one of our assets. What tells
sales whether it is worth a call is (1) whether the asset is about something we sell, and (2)
what the lead did on its own after the download. Both are read from the lead's activities at or
before the scoring time ``as_of``; the behavioural signals look back ``WINDOW_DAYS`` (90), the
same window firr-base's MQL gate uses, so a year-old download does not keep a lead qualified.

Signals (all present for every lead, zero/false when nothing happened):

- ``syndication.downloads_90d``: content downloads in the window.
- ``syndication.top_funnel_downloads_90d``: of those, top-funnel assets. A download is top-funnel
  unless its ``stage`` (or ``funnel_stage``) property names a later stage (middle, mofu,
  consideration, bottom, bofu, decision): syndicated assets are awareness content by design, so
  only an explicitly later-stage asset (a pricing guide, an ROI calculator) is excluded.
- ``syndication.topic_match`` / ``syndication.topics_matched``: whether any download in the window
  is about a topic of the rulepacks' ``[vocabulary] topics``, and how many distinct topics matched.
  A topic matches as whole words (a trailing plural s/es allowed) in the download's ``topic`` /
  ``topics`` / ``asset`` / ``title`` / ``name`` / ``url`` properties, case and punctuation ignored,
  so "lead scoring" matches "The Lead Scoring Playbook" and "/resources/lead-scoring-playbook".
- ``syndication.relevant_downloads_90d``: top-funnel downloads that match a topic.
- ``syndication.nurture_clicks_90d``: email clicks after the lead's first download (the follow-up
  nurture it was enrolled in); a click tagged with another ``campaign_type`` (an event invitation,
  a product update) does not count.
- ``syndication.service_page_after_download``: a ``service_page_visit`` after the first download.
- ``syndication.follow_ups_90d``: the lead's own engagement after the first download: email clicks
  and replies, and site, webinar, high-intent and hand-raise activities (tiers low, medium, high
  and readiness), other than further downloads. Email opens do not count (image prefetching opens
  emails nobody read).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from leadscore.plugin import Activity, ExtractContext, Lead, Signal, SignalSpec, activity_tiers, day_text, per_vocabulary

WINDOW_DAYS = 90
LATER_STAGES = frozenset({"middle", "mid", "mofu", "middle_of_funnel", "consideration", "bottom", "bofu",
                          "bottom_of_funnel", "decision"})
TOPIC_PROPERTIES = ("topic", "topics", "asset", "title", "name", "url")
FOLLOW_UP_TIERS = frozenset({"low", "medium", "high", "readiness"})
FOLLOW_UP_EMAIL = frozenset({"email_click", "email_reply"})

PROVIDES = (
    SignalSpec("syndication.downloads_90d", "int", "content downloads in the last 90 days"),
    SignalSpec("syndication.top_funnel_downloads_90d", "int",
               "top-funnel downloads in the last 90 days (no later-stage `stage` property)"),
    SignalSpec("syndication.topic_match", "bool", "a download in the last 90 days is about one of the [vocabulary] topics"),
    SignalSpec("syndication.topics_matched", "int", "distinct [vocabulary] topics the last 90 days' downloads are about"),
    SignalSpec("syndication.relevant_downloads_90d", "int", "top-funnel downloads on one of the topics, last 90 days"),
    SignalSpec("syndication.nurture_clicks_90d", "int", "nurture email clicks after the first download, last 90 days"),
    SignalSpec("syndication.service_page_after_download", "bool",
               "a service page visit after the first download, in the last 90 days"),
    SignalSpec("syndication.follow_ups_90d", "int",
               "the lead's own engagement after the first download (not opens, not more downloads), last 90 days"),
)
NAMES = frozenset(spec.name for spec in PROVIDES)

# Most leads never download anything: their signals are the same zeros, built once.
NO_DOWNLOAD = tuple(
    Signal(spec.name, False if spec.type == "bool" else 0, None, "no content download before the scoring time")
    for spec in PROVIDES
)

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case, every run of punctuation/whitespace a single space: "Lead-Scoring_Guide" -> "lead scoring guide"."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _topic_pattern(topic: str) -> re.Pattern[str] | None:
    words = normalise(topic)
    if not words:
        return None
    return re.compile(r"(?<![a-z0-9])" + re.escape(words) + r"(?:s|es)?(?![a-z0-9])")


def _compile_topics(vocabulary: Mapping[str, Any]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled = []
    for topic in sorted(str(t) for t in vocabulary.get("topics") or ()):
        pattern = _topic_pattern(topic)
        if pattern is not None:
            compiled.append((topic, pattern))
    return tuple(compiled)


# Compiled once per vocabulary object (the engine keeps one per run), like the built-in extractors.
topic_patterns = per_vocabulary(_compile_topics)


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str):
                yield item


def asset_text(activity: Activity) -> str:
    """The words describing a downloaded asset, from its properties."""
    props = activity.properties
    return " ".join(normalise(t) for key in TOPIC_PROPERTIES for t in _texts(props.get(key)))


def topics_of(activity: Activity, patterns: Iterable[tuple[str, re.Pattern[str]]]) -> list[str]:
    text = asset_text(activity)
    return [topic for topic, pattern in patterns if pattern.search(text)] if text else []


def is_top_funnel(activity: Activity) -> bool:
    props = activity.properties
    stage = props.get("stage", props.get("funnel_stage"))
    return not (isinstance(stage, str) and normalise(stage).replace(" ", "_") in LATER_STAGES)




def _is_nurture(click: Activity) -> bool:
    campaign = click.properties.get("campaign_type")
    return campaign is None or (isinstance(campaign, str) and normalise(campaign) == "nurture")


def _label(activity: Activity) -> str:
    props = activity.properties
    name = props.get("asset") or props.get("title") or props.get("url")
    day = day_text(activity.at)
    return f"{activity.type} on {day} ({name})" if isinstance(name, str) and name else f"{activity.type} on {day}"


def extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    if ctx.wanted is not None and not (ctx.wanted & NAMES):
        return
    as_of = ctx.as_of
    downloads = [a for a in lead.activities if a.type == "content_download" and a.at <= as_of]
    if not downloads:
        yield from NO_DOWNLOAD
        return
    since = as_of - timedelta(days=WINDOW_DAYS)
    first_download = min(a.at for a in downloads)
    recent = sorted((a for a in downloads if a.at >= since), key=lambda a: a.at)
    patterns = topic_patterns(ctx.vocabulary)

    top_funnel = [a for a in recent if is_top_funnel(a)]
    matched: dict[str, Activity] = {}
    relevant: list[Activity] = []
    for activity in recent:
        found = topics_of(activity, patterns)
        for topic in found:
            matched[topic] = activity
        if found and is_top_funnel(activity):
            relevant.append(activity)

    yield _count("syndication.downloads_90d", recent, "content downloads")
    yield _count("syndication.top_funnel_downloads_90d", top_funnel, "top-funnel downloads")
    topic_evidence = "; ".join(f"{t!r} in {_label(a)}" for t, a in sorted(matched.items())) or "no download on our topics"
    last_match = max((a.at for a in matched.values()), default=None)
    yield Signal("syndication.topic_match", bool(matched), last_match, topic_evidence)
    yield Signal("syndication.topics_matched", len(matched), last_match, topic_evidence)
    yield _count("syndication.relevant_downloads_90d", relevant, "top-funnel downloads on our topics")

    after = sorted((a for a in lead.activities if first_download < a.at <= as_of and a.at >= since),
                   key=lambda a: a.at)
    tiers = activity_tiers(ctx.vocabulary)
    clicks = [a for a in after if a.type == "email_click" and _is_nurture(a)]
    service = [a for a in after if a.type == "service_page_visit"]
    follow_ups = [a for a in after if a.type != "content_download"
                  and (a.type in FOLLOW_UP_EMAIL or tiers.get(a.type) in FOLLOW_UP_TIERS)]
    yield _count("syndication.nurture_clicks_90d", clicks, "nurture email clicks after the download")
    yield Signal("syndication.service_page_after_download", bool(service), service[-1].at if service else None,
                 _label(service[-1]) if service else "no service page visit after the download")
    yield _count("syndication.follow_ups_90d", follow_ups, "follow-up actions after the download")


def _count(name: str, activities: list[Activity], what: str) -> Signal:
    if not activities:
        return Signal(name, 0, None, f"no {what} in the last {WINDOW_DAYS} days")
    last = activities[-1]
    return Signal(name, len(activities), last.at, f"{len(activities)} {what}, last: {_label(last)}")
