"""A synthetic B2B funnel with known true effects: leads, activities and outcomes for tests and demos.

Each lead converts with a probability set by a logistic model over a few facts (title, a pricing
visit in its first week, source, company size); ``TRUE_EFFECTS`` lists them in log-odds. A good
calibration recovers their order and signs. Two traps check that nothing after a lead's scoring
time (``created_at`` + 7 days) is seen: every lead that converts books a meeting the day before
it is won, and most leads browse the site again weeks later. Deterministic for a seed; standard
library only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

SCORE_DELAY_DAYS = 7
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
BASE_LOG_ODDS = -1.6

# Log-odds each fact adds to the chance of winning; "colour" is noise with no effect.
TRUE_EFFECTS: Mapping[str, float] = {
    "vp_title": 1.4,
    "pricing_first_week": 1.0,
    "partner_source": 0.6,
    "large_company": 0.35,
    "student_title": -1.2,
    "colour_red": 0.0,
}

TITLES = (("VP Marketing", "vp_title"), ("VP of Sales", "vp_title"), ("Marketing Manager", None),
          ("Engineer", None), ("Marketing Intern", "student_title"), ("Student", "student_title"))
SOURCES = ("google_ads", "linkedin_ads", "webinar", "partner")

# The pack a team might start from: the right rules, every one at +10 points.
STARTING_PACK = """\
[pack]
name = "synthetic-start"
version = "1.0.0"

[categories.fit]
[categories.intent]
[categories.negative]

[[rules]]
id = "fit.vp"
category = "fit"
points = 10
reason = "VP title"
when = { signal = "title.seniority", eq = "vp" }

[[rules]]
id = "fit.student"
category = "fit"
points = 10
reason = "Student or intern"
when = { signal = "title.seniority", eq = "student" }

[[rules]]
id = "intent.pricing"
category = "intent"
points = 10
on = "pricing_page_visit"
reason = "Looked at pricing"

[[rules]]
id = "fit.partner"
category = "fit"
points = 10
reason = "Came through a partner"
when = { signal = "lead.source", eq = "partner" }

[[rules]]
id = "fit.large"
category = "fit"
points = 10
reason = "1,000 or more employees"
when = { signal = "company.employees", gte = 1000 }

[[rules]]
id = "fit.red"
category = "fit"
points = 10
reason = "Colour field is red"
when = { signal = "fields.colour", eq = "red" }

[[rules]]
id = "readiness.meeting"
category = "intent"
points = 10
on = "meeting_booked"
reason = "Booked a meeting"

[[bands]]
name = "cold"
min = 0

[[bands]]
name = "warm"
min = 20

[[bands]]
name = "hot"
min = 40
"""

# Each starting rule and the fact it stands for.
RULE_FACTS: Mapping[str, str] = {"fit.vp": "vp_title", "fit.student": "student_title",
                                 "intent.pricing": "pricing_first_week", "fit.partner": "partner_source",
                                 "fit.large": "large_company", "fit.red": "colour_red"}


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic_funnel(leads: int = 2000, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(leads as JSON-ready dicts, outcome rows as dicts with lead_id, stage, at, amount)."""
    rng = random.Random(seed)
    out_leads: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for i in range(leads):
        created = START + timedelta(days=rng.uniform(0, 360))
        title, title_fact = rng.choice(TITLES)
        source = rng.choice(SOURCES)
        employees = rng.choice((12, 80, 300, 1500, 8000))
        colour = rng.choice(("red", "blue", "green"))
        facts = {"vp_title": title_fact == "vp_title", "student_title": title_fact == "student_title",
                 "partner_source": source == "partner", "large_company": employees >= 1000,
                 "colour_red": colour == "red", "pricing_first_week": rng.random() < 0.35}
        activities = []
        if facts["pricing_first_week"]:
            activities.append({"type": "pricing_page_visit",
                               "at": _iso(created + timedelta(days=rng.uniform(0, SCORE_DELAY_DAYS - 0.5)))})
        if rng.random() < 0.6:  # browsing weeks later: after the scoring time, never to be seen
            activities.append({"type": "pricing_page_visit", "at": _iso(created + timedelta(days=rng.uniform(20, 60)))})
        log_odds = BASE_LOG_ODDS + sum(TRUE_EFFECTS[name] for name, present in facts.items() if present)
        lead_id = f"S-{i:05d}"
        outcomes.append({"lead_id": lead_id, "stage": "mql", "at": _iso(created + timedelta(days=1)), "amount": None})
        if rng.random() < 1 / (1 + math.exp(-log_odds)):
            won = created + timedelta(days=rng.uniform(SCORE_DELAY_DAYS + 3, 80))
            outcomes.append({"lead_id": lead_id, "stage": "opportunity", "at": _iso(won - timedelta(days=2)),
                             "amount": None})
            outcomes.append({"lead_id": lead_id, "stage": "won", "at": _iso(won), "amount": rng.randrange(5, 50) * 1000})
            # The trap: a hand-raise that only converting leads make, after their scoring time.
            activities.append({"type": "meeting_booked", "at": _iso(won - timedelta(days=1))})
        activities.sort(key=lambda a: a["at"])
        out_leads.append({"id": lead_id, "email": f"p{i}@company{i % 400}.example", "title": title, "source": source,
                          "created_at": _iso(created),
                          "company": {"name": f"Company {i % 400}", "employees": employees, "country": "US"},
                          "fields": {"colour": colour}, "activities": activities})
    return out_leads, outcomes


def write_funnel(folder: Any, leads: int = 2000, seed: int = 7) -> tuple[Any, Any]:
    """Write ``leads.jsonl`` and ``outcomes.csv`` of a synthetic funnel into ``folder``; return both paths."""
    import csv
    import json
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lead_rows, outcome_rows = synthetic_funnel(leads, seed)
    leads_path, outcomes_path = folder / "leads.jsonl", folder / "outcomes.csv"
    leads_path.write_text("".join(json.dumps(lead) + "\n" for lead in lead_rows), encoding="utf-8")
    with open(outcomes_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["lead_id", "stage", "at", "amount"])
        for row in outcome_rows:
            writer.writerow([row["lead_id"], row["stage"], row["at"], "" if row["amount"] is None else row["amount"]])
    return leads_path, outcomes_path
