"""What of a lead gave no signal, counted as `leadscore score` reports it (leadscore.explain.count_unscored),
the one count the python reader's run, the columnar engine's odd lines and the Spark engine share."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from leadscore.explain import count_unscored
from leadscore.model import Activity, Lead

DAY = datetime(2026, 11, 2, tzinfo=timezone.utc)
KNOWN = frozenset({"page_view", "demo_request"})
DECLARED = {"seats": ("int", None), "budget_confirmed": ("bool", None)}


def _lead(lead_id: str, types: list[str], fields: dict[str, object]) -> Lead:
    return Lead(id=lead_id, email=f"{lead_id.lower()}@acme.example", fields=fields,
                activities=[Activity(kind, DAY + timedelta(hours=i)) for i, kind in enumerate(types)])


def test_each_unknown_activity_and_each_lead_s_misfit_field_is_counted() -> None:
    unknown: Counter[str] = Counter()
    misfits: Counter[tuple[str, str]] = Counter()
    leads = [_lead("L-1", ["page_view", "g2_profile_view", "g2_profile_view", "demo_request"],
                   {"seats": "about forty", "budget_confirmed": "yes"}),
             _lead("L-2", ["product_tour_started"], {"seats": 12.5, "budget_confirmed": "maybe", "notes": "x"}),
             _lead("L-3", ["page_view"], {"seats": "40"})]
    for lead in leads:
        count_unscored(lead, KNOWN, DECLARED, unknown, misfits)
    assert unknown == {"g2_profile_view": 2, "product_tour_started": 1}  # every activity of the type
    assert misfits == {("seats", "int"): 2, ("budget_confirmed", "bool"): 1}  # once per lead and field


def test_a_counter_left_out_is_not_counted_and_nothing_is_declared() -> None:
    lead = _lead("L-1", ["g2_profile_view"], {"seats": "many"})
    unknown: Counter[str] = Counter()
    count_unscored(lead, KNOWN, DECLARED, unknown, None)
    assert unknown == {"g2_profile_view": 1}
    misfits: Counter[tuple[str, str]] = Counter()
    count_unscored(lead, KNOWN, None, None, misfits)  # no pack declares a field type
    assert misfits == {}
    count_unscored(lead, KNOWN, DECLARED, None, misfits)
    assert misfits == {("seats", "int"): 1}
