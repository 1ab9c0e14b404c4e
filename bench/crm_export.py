#!/usr/bin/env python3
"""bench/generate.py's leads written as a CRM's contacts export, to be read with ``--map hubspot``
or ``--map salesforce``, and with ``--activities`` their activities as an activities CSV whose
``lead_id`` is the export's id (an export of engagements, in leadscore's own columns).

    python bench/crm_export.py --crm hubspot --leads 200000 -o hubspot.csv --activities acts.csv
    leadscore score hubspot.csv --map hubspot --activities acts.csv --as-of 2026-11-23 -o scores.jsonl

Each value is written in one of the forms the CRM's export uses (docs/maps.md): HubSpot's source
codes and labels, dates as ``2026-11-02 14:23`` or ``11/02/2026 14:23``, websites as URLs, headcounts
as ranges or with thousands separators, revenue with a currency sign; Salesforce's picklist labels
and US report dates with AM/PM. A few cells are what exports really hold and a reader must cope
with: a row without an id, a headcount of ``n/a``, a date in a form the map does not read, a company
name with a space after it.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import Generator, _parse_as_of  # noqa: E402

HUBSPOT = ("Record ID", "First Name", "Last Name", "Email", "Job Title", "Original Source", "Create Date",
           "Associated Company ID", "Company Name", "Website URL", "Industry", "Number of Employees", "Annual Revenue",
           "Country/Region", "Lifecycle Stage", "Lead Status", "HubSpot Score", "Phone Number", "Favourite Channel")
SALESFORCE = ("Lead ID", "First Name", "Last Name", "Email", "Title", "Lead Source", "Created Date",
              "Converted Account ID", "Company / Account", "Website", "Industry", "No. of Employees", "Annual Revenue",
              "Country", "Lead Status", "Rating", "Phone")
HUBSPOT_SOURCES = {"organic_search": ("ORGANIC_SEARCH", "Organic Search"), "paid_search": ("PAID_SEARCH", "Paid Search"),
                   "email": ("EMAIL_MARKETING", "Email Marketing"), "referral": ("REFERRALS", "Referrals"),
                   "direct": ("DIRECT_TRAFFIC", "Direct Traffic"), "paid_social": ("PAID_SOCIAL", "Paid Social")}
SALESFORCE_SOURCES = {"website": "Web", "referral": "Employee Referral", "partner": "Partner Referral",
                      "event": "Seminar - Internal", "trade_show": "Trade Show"}
LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "Marketing Qualified Lead")
HUBSPOT_STATUS = ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT")
SALESFORCE_STATUS = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")


def _headcount(rng: random.Random, employees: Any) -> str:
    if employees is None:
        return ""
    roll = rng.random()
    if roll < 0.01:
        return "n/a"
    if roll < 0.3:
        low = 10 ** len(str(employees)) // 10
        return f"{low}-{low * 5}" if roll < 0.2 else f"{low}+"
    return f"{employees:,}"


def _when(rng: random.Random, stamp: str, crm: str) -> str:
    at = datetime.fromisoformat(stamp).astimezone(UTC)
    if rng.random() < 0.005:
        return at.strftime("%d.%m.%Y")  # a locale the map does not read: the python reader's message
    if crm == "hubspot":
        return at.strftime("%Y-%m-%d %H:%M") if rng.random() < 0.5 else at.strftime("%m/%d/%Y %H:%M")
    return at.strftime("%m/%d/%Y %I:%M %p") if rng.random() < 0.7 else at.strftime("%m/%d/%Y")


ACTIVITY_COLUMNS = ("lead_id", "type", "at", "properties.url", "properties.campaign", "properties.asset",
                    "properties.webinar")


def rows(crm: str, n: int, seed: int, as_of: datetime, activities: Any = None) -> Iterator[list[str]]:
    """The export's data rows for ``n`` generated leads; with ``activities`` (a csv writer) each
    lead's activities are written to it as it goes, under the export's id (none for a row without one)."""
    rng = random.Random(seed + 1)
    for lead in Generator(seed, as_of).leads(n):
        company = lead.get("company", {})
        fields = lead.get("fields", {})
        number = int(lead["id"][2:])
        name = company.get("name", "")
        if name and rng.random() < 0.01:
            name += " "
        domain = company.get("domain") or ""
        website = f"https://www.{domain}/" if domain and rng.random() < 0.7 else domain
        revenue = company.get("annual_revenue")
        source = lead.get("source")
        lead_id = (str(number) if rng.random() > 0.002 else "") if crm == "hubspot" else f"00Q{number:012d}"
        if activities is not None:
            for activity in lead.get("activities", ()):
                props = activity.get("properties") or {}
                assert set(props) <= {"url", "campaign", "asset", "webinar"}, props
                activities.writerow([lead_id, activity["type"], activity["at"], *(props.get(key, "") for key in
                                                                                  ("url", "campaign", "asset", "webinar"))])
        if crm == "hubspot":
            codes = HUBSPOT_SOURCES.get(source or "")
            yield [lead_id, lead.get("first_name", ""), lead.get("last_name", ""),
                   lead.get("email", ""), lead.get("title", ""),
                   rng.choice(codes) if codes else (source or "").upper(), _when(rng, lead["created_at"], crm),
                   lead.get("account_id", ""), name, website, company.get("industry", ""),
                   _headcount(rng, company.get("employees")), "" if revenue is None else f"${revenue:,}",
                   company.get("country", ""), rng.choice(LIFECYCLE) if rng.random() < 0.6 else "",
                   rng.choice(HUBSPOT_STATUS) if fields.get("lead_status") else "",
                   str(rng.randrange(0, 100)) if rng.random() < 0.8 else "", f"+1 555 {number % 10_000:04d}",
                   rng.choice(("Email", "LinkedIn", "", "Phone", "7"))]
        else:
            yield [lead_id, lead.get("first_name", ""), lead.get("last_name", ""), lead.get("email", ""),
                   lead.get("title", ""), SALESFORCE_SOURCES.get(source or "", (source or "").replace("_", " ").title()),
                   _when(rng, lead["created_at"], crm), lead.get("account_id", ""), name, website,
                   company.get("industry", ""), _headcount(rng, company.get("employees")),
                   "" if revenue is None else f"{revenue:,}", company.get("country", ""),
                   rng.choice(SALESFORCE_STATUS) if fields.get("lead_status") else "",
                   rng.choice(("Hot", "Warm", "Cold", "")), f"(555) 010-{number % 10_000:04d}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crm", choices=("hubspot", "salesforce"), default="hubspot")
    parser.add_argument("--leads", "-n", type=int, default=1000, help="number of leads (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--as-of", default="2026-11-23", help="as bench/generate.py's --as-of")
    parser.add_argument("--output", "-o", default="-", help="output CSV (default: stdout)")
    parser.add_argument("--activities", metavar="FILE", help="also write the leads' activities to this CSV")
    args = parser.parse_args(argv)
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8", newline="")
    acts = open(args.activities, "w", encoding="utf-8", newline="") if args.activities else None
    try:
        writer = csv.writer(out)
        writer.writerow(HUBSPOT if args.crm == "hubspot" else SALESFORCE)
        act_writer = None
        if acts is not None:
            act_writer = csv.writer(acts)
            act_writer.writerow(ACTIVITY_COLUMNS)
        writer.writerows(rows(args.crm, args.leads, args.seed, _parse_as_of(args.as_of), act_writer))
    finally:
        if out is not sys.stdout:
            out.close()
        if acts is not None:
            acts.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
