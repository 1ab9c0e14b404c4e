"""The syndication extractor: topic matching, top-funnel assets and follow-up after the download, in time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from leadscore.model import Activity, ExtractContext, Lead
from leadscore_syndication import signals

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
TOPICS = frozenset({"lead scoring", "attribution model", "crm data quality", "abm"})


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def extract(*activities: Activity, topics=TOPICS, wanted=None) -> dict:
    ctx = ExtractContext(AS_OF, {"topics": topics}, wanted)
    return {s.name: s.value for s in signals.extract(Lead("S-1", activities=activities), ctx)}


def download(days: float, **properties) -> Activity:
    return Activity("content_download", days_ago(days), properties)


@pytest.mark.parametrize(("properties", "matched"), [
    ({"asset": "The Lead Scoring Playbook"}, ["lead scoring"]),
    ({"asset": "LEAD-SCORING: a field guide"}, ["lead scoring"]),
    ({"url": "/resources/lead_scoring-benchmarks"}, ["lead scoring"]),
    ({"asset": "Attribution Models Explained"}, ["attribution model"]),
    ({"title": "Fixing CRM data quality", "topic": "ABM"}, ["abm", "crm data quality"]),
    ({"topics": ["abm", "events"]}, ["abm"]),
    ({"asset": "Scoring leads the old way"}, []),
    ({"asset": "Tabmaster spreadsheets"}, []),
    ({}, []),
])
def test_topics_match_whole_words_in_the_asset_properties(properties, matched) -> None:
    patterns = signals.topic_patterns({"topics": TOPICS})
    assert sorted(signals.topics_of(download(1, **properties), patterns)) == matched


def test_topic_signals_count_distinct_topics_over_recent_downloads() -> None:
    values = extract(download(5, asset="The Lead Scoring Playbook"), download(3, asset="Lead scoring for ABM"),
                     download(120, asset="Attribution models"))
    assert values["syndication.topic_match"] is True
    assert values["syndication.topics_matched"] == 2
    assert values["syndication.downloads_90d"] == 2


def test_no_topics_in_the_vocabulary_means_no_match() -> None:
    values = extract(download(5, asset="The Lead Scoring Playbook"), topics=frozenset())
    assert values["syndication.topic_match"] is False and values["syndication.relevant_downloads_90d"] == 0


@pytest.mark.parametrize(("stage", "top_funnel"), [
    (None, True), ("top", True), ("TOFU", True), ("awareness", True), ("middle", False), ("MOFU", False),
    ("consideration", False), ("bottom", False), ("bottom-of-funnel", False), ("decision", False),
])
def test_a_download_is_top_funnel_unless_tagged_with_a_later_stage(stage, top_funnel) -> None:
    props = {"asset": "The Lead Scoring Playbook", **({"stage": stage} if stage else {})}
    values = extract(download(5, **props))
    assert values["syndication.top_funnel_downloads_90d"] == int(top_funnel)
    assert values["syndication.relevant_downloads_90d"] == int(top_funnel)


def test_follow_up_is_what_the_lead_did_after_its_first_download() -> None:
    values = extract(
        Activity("email_click", days_ago(30)),                       # before the download
        download(20, asset="Cold chain guide"),
        Activity("email_open", days_ago(19)),                        # opens never count
        Activity("email_click", days_ago(18)),
        Activity("email_click", days_ago(17), {"campaign_type": "event"}),  # not the nurture
        download(16, asset="Another guide"),                         # more downloads are not follow-up
        Activity("service_page_visit", days_ago(15)),
        Activity("unsubscribe", days_ago(14)),
        Activity("demo_request", days_ago(10)),
        Activity("service_page_visit", days_ago(-2)),                # after the scoring time
    )
    assert values["syndication.nurture_clicks_90d"] == 1
    assert values["syndication.service_page_after_download"] is True
    # clicks on 18 and 17 days ago, the service page and the demo request
    assert values["syndication.follow_ups_90d"] == 4


def test_without_a_download_nothing_is_follow_up() -> None:
    values = extract(Activity("email_click", days_ago(3)), Activity("service_page_visit", days_ago(2)))
    assert values["syndication.nurture_clicks_90d"] == 0
    assert values["syndication.service_page_after_download"] is False
    assert values["syndication.follow_ups_90d"] == 0


def test_follow_up_older_than_the_window_does_not_count() -> None:
    values = extract(download(200, asset="Lead scoring"), Activity("service_page_visit", days_ago(95)))
    assert values["syndication.service_page_after_download"] is False
    assert values["syndication.relevant_downloads_90d"] == 0


def test_activities_need_not_arrive_in_time_order() -> None:
    ordered = extract(download(20), Activity("email_click", days_ago(10)))
    shuffled = extract(Activity("email_click", days_ago(10)), download(20))
    assert ordered == shuffled and ordered["syndication.nurture_clicks_90d"] == 1


def test_evidence_names_the_asset_and_the_observed_time_is_the_activity() -> None:
    ctx = ExtractContext(AS_OF, {"topics": TOPICS}, None)
    lead = Lead("S-1", activities=(download(4, asset="The Lead Scoring Playbook"),))
    found = {s.name: s for s in signals.extract(lead, ctx)}
    relevant = found["syndication.relevant_downloads_90d"]
    assert relevant.observed_at == days_ago(4)
    assert "The Lead Scoring Playbook" in relevant.evidence


def test_the_extractor_skips_leads_when_no_rulepack_wants_its_signals() -> None:
    assert extract(download(4, asset="Lead scoring"), wanted=frozenset({"title.seniority"})) == {}
    assert set(extract(download(4), wanted=frozenset({"syndication.topic_match"}))) == signals.NAMES
