#!/usr/bin/env python3
"""Generate synthetic B2B leads as JSON Lines (the input shape of docs/architecture.md).

    python bench/generate.py --leads 100000 --seed 7 -o /tmp/leads.jsonl
    python bench/generate.py --leads 5 --seed 1            # to stdout

The output depends only on the arguments: the same ``--leads``, ``--seed`` and ``--as-of`` give a
byte-identical file on any machine (one ``random.Random(seed)``, no clock, no hash ordering).
Leads are written as they are made, so memory stays constant whatever ``--leads`` is.

What the data looks like:
- accounts of 1-8 contacts (most accounts small) sharing ``account_id``, company name, domain and
  firmographics; industry, employees, revenue (correlated with employees), country and tier vary
  the way a CRM export does, with some values missing or spelled in full ("United States");
- people with international names, job titles across seniorities and functions (a few students,
  some missing), email addresses that are mostly on the company domain but also personal
  (gmail...), shared mailboxes (info@...), academic, throwaway and malformed;
- a lead source from paid, organic, event, partner, syndication and outbound channels;
- 0-40 activities per lead (about 20 on average) over the 180 days before ``--as-of``, grouped in
  sessions, mostly email opens and page views with fewer pricing visits and demo requests. Leads
  are cold, warm or hot, which shifts their mix towards high-intent and hand-raise activities.
  A few activity types are outside the documented vocabulary, as real exports have.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

DEFAULT_AS_OF = "2026-11-23T00:00:00Z"
WINDOW_DAYS = 180
MAX_ACTIVITIES = 40

# --- vocabularies (value, weight) -------------------------------------------------------------

# Contacts per account: most accounts have one or two known contacts, a few have many.
ACCOUNT_SIZES = ((1, 30), (2, 22), (3, 15), (4, 11), (5, 8), (6, 6), (7, 4), (8, 4))

# Activity type, tier (for the cold / warm / hot multipliers), base weight.
ACTIVITY_TYPES: tuple[tuple[str, str, float], ...] = (
    ("email_open", "email", 30.0),
    ("email_click", "email", 8.0),
    ("email_reply", "email", 0.4),
    ("page_view", "low", 22.0),
    ("blog_visit", "low", 6.0),
    ("ad_click", "low", 2.0),
    ("social_engagement", "low", 1.5),
    ("chat_started", "low", 0.4),
    ("content_download", "medium", 3.0),
    ("webinar_registration", "medium", 1.5),
    ("webinar_attendance", "medium", 0.9),
    ("event_registration", "medium", 0.4),
    ("event_attendance", "medium", 0.25),
    ("form_submission", "medium", 1.2),
    ("video_view", "medium", 1.5),
    ("newsletter_signup", "medium", 0.4),
    ("repeat_visit", "medium", 1.0),
    ("pricing_page_visit", "high", 1.4),
    ("comparison_page_visit", "high", 0.5),
    ("service_page_visit", "high", 1.4),
    ("case_study_view", "high", 0.9),
    ("integration_page_visit", "high", 0.5),
    ("roi_calculator_use", "high", 0.15),
    ("security_page_visit", "high", 0.3),
    ("demo_request", "readiness", 0.2),
    ("contact_sales", "readiness", 0.15),
    ("trial_signup", "readiness", 0.15),
    ("meeting_booked", "readiness", 0.08),
    ("quote_request", "readiness", 0.04),
    ("unsubscribe", "negative", 0.25),
    ("email_bounce", "negative", 0.15),
    ("spam_complaint", "negative", 0.02),
    # Not in the documented vocabulary: the engine keeps them in tier "other".
    ("g2_profile_view", "other", 0.2),
    ("product_tour_started", "other", 0.15),
)

# Engagement profiles: share of leads and a weight multiplier per tier.
PROFILES: tuple[tuple[str, float, dict[str, float]], ...] = (
    ("cold", 65, {"email": 1.3, "low": 1.0, "medium": 0.4, "high": 0.12, "readiness": 0.04, "negative": 1.5}),
    ("warm", 28, {"email": 1.0, "low": 1.0, "medium": 1.2, "high": 1.0, "readiness": 0.6, "negative": 0.6}),
    ("hot", 7, {"email": 0.7, "low": 1.0, "medium": 1.5, "high": 4.0, "readiness": 6.0, "negative": 0.2}),
)

PAGES = ("/", "/product", "/features", "/blog/lead-scoring-101", "/blog/revops-playbook", "/blog/mql-vs-sql",
         "/customers", "/about", "/careers", "/docs/getting-started", "/integrations", "/resources")
ACTIVITY_PAGES = {
    "pricing_page_visit": ("/pricing", "/pricing/enterprise", "/pricing?plan=team"),
    "comparison_page_visit": ("/compare/hubspot", "/compare/marketo", "/compare/salesforce"),
    "service_page_visit": ("/product/scoring", "/product/routing", "/platform", "/solutions/revops"),
    "case_study_view": ("/customers/acme", "/customers/globex", "/customers/initech"),
    "integration_page_visit": ("/integrations/salesforce", "/integrations/hubspot", "/integrations/snowflake"),
    "security_page_visit": ("/security", "/trust", "/security/soc2"),
    "blog_visit": ("/blog/lead-scoring-101", "/blog/revops-playbook", "/blog/intent-data", "/blog/abm-guide"),
    "form_submission": ("/contact", "/newsletter", "/ebook/state-of-revops"),
}
CAMPAIGNS = ("nov-newsletter", "oct-newsletter", "webinar-invite-q4", "product-update-3.2", "abm-enterprise-seq",
             "nurture-step-1", "nurture-step-2", "nurture-step-3", "event-follow-up", "trial-onboarding")
ASSETS = ("state-of-revops-2026.pdf", "lead-scoring-playbook.pdf", "abm-benchmark-report.pdf",
          "buyer-intent-guide.pdf", "roi-worksheet.xlsx")
WEBINARS = ("scoring-that-sales-trusts", "revops-in-2027", "intent-data-deep-dive", "customer-panel-q4")

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Daniel", "Karen",
    "Matthew", "Nancy", "Anthony", "Lisa", "Mark", "Emily", "Steven", "Ashley", "Andrew", "Michelle",
    "Priya", "Rahul", "Ananya", "Arjun", "Wei", "Li", "Yuki", "Hiroshi", "Min-jun", "Ji-woo", "Mohammed",
    "Fatima", "Omar", "Aisha", "Lukas", "Anna", "Jonas", "Lena", "Hugo", "Chloé", "Léa", "Mateo", "Sofía",
    "Lucía", "João", "Ana", "Giulia", "Marco", "Sven", "Ingrid", "Olga", "Dmitri", "Chidi", "Amara", "Noah",
    "Olivia", "Liam", "Emma", "Zoe", "Dana",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "Allen", "King", "Wright", "Patel",
    "Sharma", "Gupta", "Singh", "Wang", "Zhang", "Chen", "Tanaka", "Suzuki", "Kim", "Park", "Nguyen",
    "Khan", "Ali", "Müller", "Schmidt", "Schneider", "Fischer", "Dubois", "Moreau", "Rossi", "Bianchi",
    "Silva", "Santos", "Fernández", "González", "Johansson", "Andersson", "Novak", "Kowalski", "Ivanov",
    "O'Brien", "Murphy", "Okafor", "Mensah", "van der Berg", "de Jong",
)

# Company names: PREFIX x ROOT x SUFFIX gives 120,000 distinct names; accounts beyond that get a
# number, as "Northwind Analytics 2" would in a real CRM.
NAME_PREFIXES = (
    "North", "South", "East", "West", "Blue", "Red", "Green", "Silver", "Golden", "Bright", "Clear", "Swift",
    "Iron", "Stone", "River", "Lake", "Summit", "Peak", "Harbor", "Bay", "Cedar", "Oak", "Pine", "Maple",
    "Aspen", "Birch", "Falcon", "Eagle", "Hawk", "Fox", "Wolf", "Bear", "Lion", "Orbit", "Nova", "Stellar",
    "Quantum", "Vector", "Pixel", "Data", "Cloud", "Signal", "Pulse", "Spark", "Bolt", "Prime", "Apex",
    "Vertex", "Zenith", "Atlas", "Titan", "Helix", "Nimbus", "Cobalt", "Crimson", "Amber", "Onyx", "Jade",
    "Coral", "Arctic",
)
NAME_ROOTS = (
    "wind", "point", "field", "gate", "bridge", "works", "line", "path", "forge", "stream", "wave", "grid",
    "stack", "scale", "logic", "mind", "sight", "view", "ware", "core", "base", "hub", "link", "loop", "mark",
    "shift", "sphere", "craft", "ridge", "stone", "light", "leaf", "root", "flow", "beam", "dock", "port",
    "rock", "star", "well", "wood", "vale", "crest", "haven", "mill", "brook", "dale", "ford", "gate", "tide",
    "trail", "way", "yard", "zone", "nest", "fire", "frame", "form", "tree", "sail",
)
NAME_SUFFIXES = (
    ("", ""), (" Inc", ""), (" Labs", "labs"), (" Systems", "systems"), (" Technologies", "tech"),
    (" Group", "group"), (" Analytics", "analytics"), (" Software", "software"), (" Solutions", ""),
    (" Partners", ""), (" Health", "health"), (" Capital", "capital"), (" Logistics", ""),
    (" Manufacturing", ""), (" Media", "media"), (" Consulting", ""), (" AI", "ai"), (" Bank", "bank"),
    (" Retail", ""), (" Energy", "energy"), (" Networks", "networks"), (" Industries", ""), (" Ltd", ""),
    (" GmbH", ""), (" SA", ""), (" Insurance", ""), (" Foods", "foods"), (" Motors", ""), (" Studio", "studio"),
    (" Cloud", "cloud"), (" Security", "security"), (" Bio", "bio"), (" Robotics", "robotics"),
)
_NAME_SPACE = len(NAME_PREFIXES) * len(NAME_ROOTS) * len(NAME_SUFFIXES)

INDUSTRIES = (
    ("SaaS", 10), ("Computer Software", 9), ("Information Technology", 8), ("Financial Services", 6),
    ("Banking", 2), ("Insurance", 2), ("Fintech", 2), ("Healthcare", 5), ("Hospital & Health Care", 2),
    ("Biotechnology", 1.5), ("Pharmaceuticals", 1.5), ("Manufacturing", 6), ("Automotive", 1.5),
    ("Retail", 4), ("E-commerce", 2), ("Consumer Goods", 1.5), ("Education", 2), ("Higher Education", 1.5),
    ("Government", 1.5), ("Non-profit", 1), ("Marketing and Advertising", 4), ("Management Consulting", 3),
    ("Professional Services", 2), ("Telecommunications", 2), ("Media", 1.5), ("Real Estate", 1.5),
    ("Construction", 1.5), ("Oil & Energy", 1), ("Logistics", 1.5), ("Hospitality", 1),
    ("Agriculture", 0.5), ("Mining & Metals", 0.4), (None, 6),
)
# (floor, ceiling, weight): micro, small, mid-market, enterprise, large enterprise, missing.
EMPLOYEE_BANDS = ((1, 9, 12), (10, 99, 30), (100, 999, 30), (1000, 4999, 14), (5000, 250000, 8), (None, None, 6))
# Country code, weight, TLD for the company domain, how the country is sometimes spelled in full.
COUNTRIES = (
    ("US", 42, "com", "United States"), ("GB", 9, "co.uk", "United Kingdom"), ("DE", 7, "de", "Germany"),
    ("FR", 5, "fr", "France"), ("CA", 5, "ca", "Canada"), ("AU", 3, "com.au", "Australia"),
    ("IN", 5, "in", "India"), ("NL", 3, "nl", "Netherlands"), ("ES", 2, "es", "Spain"), ("IT", 2, "it", "Italy"),
    ("SE", 1.5, "se", "Sweden"), ("IE", 1.5, "ie", "Ireland"), ("CH", 1, "ch", "Switzerland"),
    ("BR", 2.5, "com.br", "Brazil"), ("MX", 1.5, "mx", "Mexico"), ("JP", 2, "jp", "Japan"),
    ("SG", 1.5, "sg", "Singapore"), ("AE", 1, "ae", None), ("ZA", 1, "co.za", None), ("PL", 1, "pl", None),
    ("IL", 0.8, "co.il", None), ("KR", 0.8, "kr", None), ("NZ", 0.5, "co.nz", None), ("NG", 0.4, "ng", None),
    ("IR", 0.05, "ir", None), ("CU", 0.03, "cu", None), (None, 4, "com", None),
)
GENERIC_TLDS = ("com", "com", "com", "io", "co", "ai", "net")
TIERS = ((None, 90), ("target", 7), ("strategic", 3))

SOURCES = (
    ("google_ads", 12), ("linkedin_ads", 10), ("organic_search", 13), ("website", 9), ("direct", 3),
    ("email", 5), ("newsletter", 2), ("referral", 4), ("g2", 2), ("capterra", 1), ("partner", 4),
    ("reseller", 1), ("event", 3), ("trade_show", 2), ("webinar", 6), ("content_syndication", 8),
    ("outbound", 4), ("sdr_outbound", 2), ("facebook_ads", 2), ("bing_ads", 1), ("Cold Call", 1),
    ("Other", 1), (None, 2),
)

FUNCTIONS = (
    ("Marketing", 14), ("Sales", 12), ("Engineering", 10), ("IT", 8), ("Finance", 6), ("Operations", 6),
    ("Human Resources", 3), ("Demand Generation", 4), ("Product Marketing", 3), ("Revenue Operations", 3),
    ("Marketing Operations", 2), ("Customer Success", 4), ("Product", 5), ("Data", 3), ("Security", 2),
    ("Procurement", 2), ("Growth", 2), ("Business Development", 3),
)
SENIORITY_TEMPLATES = (
    ("c_level", 5, ("Chief {f} Officer", "CEO", "CEO & Co-Founder", "Founder", "CTO", "CFO", "CMO", "COO",
                    "Chief Revenue Officer", "President", "Owner", "Managing Director")),
    ("vp", 8, ("VP {f}", "VP of {f}", "Vice President, {f}", "SVP {f}", "Head of {f}")),
    ("director", 14, ("Director of {f}", "{f} Director", "Director, {f}", "Senior Director, {f}")),
    ("manager", 24, ("{f} Manager", "Senior {f} Manager", "{f} Team Lead", "Manager, {f}")),
    ("individual", 33, ("{f} Specialist", "{f} Analyst", "Senior {f} Analyst", "{f} Coordinator",
                        "{f} Associate", "{f} Executive", "Senior {f} Specialist", "{f} Lead",
                        "Software Engineer", "Account Executive", "Business Development Representative",
                        "Sales Development Representative", "Consultant", "Data Scientist", "Accountant",
                        "Recruiter", "Content Writer", "Systems Administrator", "Designer")),
    ("student", 2, ("Student", "{f} Intern", "PhD Student", "Graduate Student", "Working Student")),
    ("odd", 1.5, ("Other", "n/a", "-", "Self-employed", "Retired")),
    ("missing", 8, (None,)),
)

PERSONAL_DOMAINS = (("gmail.com", 55), ("yahoo.com", 10), ("hotmail.com", 9), ("outlook.com", 9),
                    ("icloud.com", 5), ("aol.com", 2), ("gmx.de", 2), ("web.de", 1), ("yahoo.co.uk", 2),
                    ("protonmail.com", 2), ("qq.com", 1.5), ("mail.ru", 1))
DISPOSABLE_DOMAINS = ("mailinator.com", "10minutemail.com", "yopmail.com", "guerrillamail.com", "trashmail.com")
EDU_DOMAINS = ("stanford.edu", "mit.edu", "ox.ac.uk", "unimelb.edu.au", "tum.de", "iitb.ac.in", "nyu.edu")
ROLE_LOCAL_PARTS = ("info", "sales", "marketing", "contact", "hello", "admin", "office")
EMAIL_KINDS = (("business", 68), ("personal", 20), ("role", 3), ("education", 1.2), ("disposable", 1),
               ("invalid", 1.2), ("missing", 2.5), ("other_company", 3))
LEAD_STATUSES = ("new", "working", "nurturing", "unqualified", "recycled")
UTM_CAMPAIGNS = ("q4-enterprise", "brand-search", "retargeting", "webinar-q4", "ebook-revops", "partner-co-op")

# --- helpers ------------------------------------------------------------------------------------


def _cumulative(pairs: tuple) -> tuple[list[Any], list[float]]:
    values = [p[0] for p in pairs]
    return values, list(itertools.accumulate(float(p[1]) for p in pairs))


class Picker:
    """Weighted choice with precomputed cumulative weights (one rng.random() per pick)."""

    __slots__ = ("values", "cum", "total")

    def __init__(self, pairs: tuple) -> None:
        self.values, self.cum = _cumulative(pairs)
        self.total = self.cum[-1]

    def __call__(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.total, 0, len(self.cum) - 1)]


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


_ASCII = str.maketrans({"é": "e", "í": "i", "ã": "a", "ü": "u", "á": "a", "ó": "o", "ñ": "n"})


def _local(name: str) -> str:
    return "".join(ch for ch in name.lower().translate(_ASCII) if ch.isalnum())


class Clock:
    """Timestamps as seconds before ``as_of``, formatted without datetime objects (fast, exact)."""

    def __init__(self, as_of: datetime, days: int) -> None:
        self.seconds = days * 86400
        start = as_of - timedelta(seconds=self.seconds)
        if start.hour or start.minute or start.second or start.microsecond:
            raise ValueError("--as-of must be midnight UTC")
        self.start = start
        self.dates = [(start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days + 1)]

    def format(self, second: int) -> str:
        """``second`` counted from the start of the window."""
        day, rest = divmod(second, 86400)
        hour, rest = divmod(rest, 3600)
        minute, sec = divmod(rest, 60)
        return f"{self.dates[day]}T{hour:02d}:{minute:02d}:{sec:02d}Z"


# --- the generator --------------------------------------------------------------------------------


class Generator:
    def __init__(self, seed: int, as_of: datetime, days: int = WINDOW_DAYS) -> None:
        self.rng = random.Random(seed)
        self.clock = Clock(as_of, days)
        self.account_size = Picker(ACCOUNT_SIZES)
        self.industry = Picker(INDUSTRIES)
        self.employee_band = Picker(tuple(((lo, hi), w) for lo, hi, w in EMPLOYEE_BANDS))
        self.country = Picker(tuple(((code, tld, full), w) for code, w, tld, full in COUNTRIES))
        self.tier = Picker(TIERS)
        self.source = Picker(SOURCES)
        self.function = Picker(FUNCTIONS)
        self.seniority = Picker(tuple((templates, w) for _, w, templates in SENIORITY_TEMPLATES))
        self.email_kind = Picker(EMAIL_KINDS)
        self.personal_domain = Picker(PERSONAL_DOMAINS)
        self.profile = Picker(tuple((mult, share) for _, share, mult in PROFILES))
        self.activity_cums = {}
        for _, _, mult in PROFILES:
            weights = [w * mult.get(tier, 1.0) for _, tier, w in ACTIVITY_TYPES]
            self.activity_cums[id(mult)] = list(itertools.accumulate(weights))
        self.activity_names = [name for name, _, _ in ACTIVITY_TYPES]
        # A permutation of the company-name space, so neighbouring accounts do not look alike.
        self.name_mult = 7919  # prime, coprime with _NAME_SPACE
        self.name_offset = self.rng.randrange(_NAME_SPACE)

    # accounts ------------------------------------------------------------------------------------

    def account(self, index: int) -> dict[str, Any]:
        rng = self.rng
        slot = (index * self.name_mult + self.name_offset) % _NAME_SPACE
        prefix_i, rest = divmod(slot, len(NAME_ROOTS) * len(NAME_SUFFIXES))
        root_i, suffix_i = divmod(rest, len(NAME_SUFFIXES))
        prefix, root = NAME_PREFIXES[prefix_i], NAME_ROOTS[root_i]
        suffix, domain_suffix = NAME_SUFFIXES[suffix_i]
        lap = index // _NAME_SPACE
        name = f"{prefix}{root}{suffix}" + (f" {lap + 1}" if lap else "")
        code, tld, full = self.country(rng)
        if rng.random() < 0.35:
            tld = rng.choice(GENERIC_TLDS)
        domain = f"{_slug(prefix + root)}{domain_suffix}{lap + 1 if lap else ''}.{tld}"
        lo_hi = self.employee_band(rng)
        employees = None
        revenue = None
        if lo_hi[0] is not None:
            lo, hi = lo_hi
            employees = int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))
            employees = max(lo, min(hi, employees))
            if employees >= 1000:
                employees = round(employees, -2)
            if rng.random() < 0.8:
                per_head = rng.lognormvariate(math.log(180_000), 0.6)
                revenue = int(round(employees * per_head, -3 if employees < 100 else -5))
        industry = self.industry(rng)
        company: dict[str, Any] = {"name": name, "domain": domain}
        if industry is not None:
            company["industry"] = industry
        if employees is not None:
            company["employees"] = employees
        if revenue is not None:
            company["annual_revenue"] = revenue
        if code is not None:
            company["country"] = full if full is not None and rng.random() < 0.05 else code
        tier = self.tier(rng)
        if tier is not None:
            company["tier"] = tier
        return {"account_id": f"A-{index + 1:07d}", "company": company}

    # people --------------------------------------------------------------------------------------

    def title(self) -> str | None:
        rng = self.rng
        template = rng.choice(self.seniority(rng))
        if template is None:
            return None
        return template.replace("{f}", self.function(rng)) if "{f}" in template else template

    def email(self, first: str, last: str, domain: str) -> str | None:
        rng = self.rng
        kind = self.email_kind(rng)
        given, family = _local(first), _local(last)
        if kind == "missing":
            return None
        if kind == "role":
            return f"{rng.choice(ROLE_LOCAL_PARTS)}@{domain}"
        pattern = rng.random()
        local = (f"{given}.{family}" if pattern < 0.5 else f"{given[0]}{family}" if pattern < 0.75
                 else given if pattern < 0.9 else f"{given}{family[0]}")
        if kind == "business":
            return f"{local}@{domain}"
        if kind == "personal":
            return f"{local}{rng.randrange(100) if rng.random() < 0.4 else ''}@{self.personal_domain(rng)}"
        if kind == "education":
            return f"{local}@{rng.choice(EDU_DOMAINS)}"
        if kind == "disposable":
            return f"{local}{rng.randrange(1000)}@{rng.choice(DISPOSABLE_DOMAINS)}"
        if kind == "other_company":  # moved job, or a consultant: business address, not this company
            return f"{local}@{_slug(rng.choice(NAME_PREFIXES) + rng.choice(NAME_ROOTS))}.com"
        # invalid: typical CRM typos
        broken = (f"{local}@{domain.rpartition('.')[0]}", f"{local}{domain}", f"{local}@@{domain}",
                  f"{given} {family}@{domain}", f"{local}@")
        return rng.choice(broken)

    # activities ----------------------------------------------------------------------------------

    def activities(self, profile: dict[str, float], first_second: int) -> list[dict[str, Any]]:
        rng = self.rng
        if rng.random() < 0.04:
            return []
        count = min(MAX_ACTIVITIES, int(rng.triangular(0, MAX_ACTIVITIES + 1, 23)))
        if not count:
            return []
        names = rng.choices(self.activity_names, cum_weights=self.activity_cums[id(profile)], k=count)
        end = self.clock.seconds - 1
        span = end - first_second
        seconds = []
        at = first_second + rng.randrange(span + 1)
        for _ in range(count):
            if rng.random() < 0.45:  # same session: a few minutes after the previous one
                at = min(end, at + rng.randrange(15, 900))
            else:  # recent activity is more likely than old
                at = end - int(span * rng.random() ** 1.6)
            seconds.append(at)
        seconds.sort()
        fmt = self.clock.format
        out = []
        for name, second in zip(names, seconds):
            activity: dict[str, Any] = {"type": name, "at": fmt(second)}
            props = self.properties(name)
            if props is not None:
                activity["properties"] = props
            out.append(activity)
        return out

    def properties(self, name: str) -> dict[str, Any] | None:
        rng = self.rng
        if name == "page_view":
            return {"url": rng.choice(PAGES)}
        if name in ACTIVITY_PAGES:
            return {"url": rng.choice(ACTIVITY_PAGES[name])}
        if name.startswith("email_"):
            return {"campaign": rng.choice(CAMPAIGNS)}
        if name == "content_download":
            return {"asset": rng.choice(ASSETS)}
        if name.startswith("webinar_"):
            return {"webinar": rng.choice(WEBINARS)}
        return None

    # leads ---------------------------------------------------------------------------------------

    def lead(self, number: int, account: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        company = account["company"]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # created somewhere in the window; activity may start up to 30 days earlier (anonymous
        # tracking stitched to the lead when it converts), never before the window.
        created = rng.randrange(self.clock.seconds - 3600)
        first_activity = max(0, created - rng.randrange(30 * 86400))
        lead: dict[str, Any] = {"id": f"L-{number:07d}"}
        email = self.email(first, last, company["domain"])
        if email is not None:
            lead["email"] = email
        lead["first_name"] = first
        lead["last_name"] = last
        title = self.title()
        if title is not None:
            lead["title"] = title
        source = self.source(rng)
        if source is not None:
            lead["source"] = source
        lead["created_at"] = self.clock.format(created)
        lead["account_id"] = account["account_id"]
        lead["company"] = company
        fields: dict[str, Any] = {}
        if rng.random() < 0.15:
            fields["budget_confirmed"] = rng.random() < 0.3
        if rng.random() < 0.3:
            fields["lead_status"] = rng.choice(LEAD_STATUSES)
        if rng.random() < 0.2:
            fields["utm_campaign"] = rng.choice(UTM_CAMPAIGNS)
        if rng.random() < 0.003:
            fields["competitor"] = True
        if fields:
            lead["fields"] = fields
        profile = self.profile(rng)
        lead["activities"] = self.activities(profile, first_activity)
        return lead

    def leads(self, n: int) -> Iterator[dict[str, Any]]:
        number = 0
        for index in itertools.count():
            if number >= n:
                return
            account = self.account(index)
            for _ in range(min(self.account_size(self.rng), n - number)):
                number += 1
                yield self.lead(number, account)


def write_leads(n: int, seed: int, out: TextIO, as_of: datetime = datetime(2026, 11, 23, tzinfo=UTC)) -> int:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    batch: list[str] = []
    written = 0
    for lead in Generator(seed, as_of).leads(n):
        batch.append(dumps(lead))
        written += 1
        if len(batch) == 1000:
            batch.append("")
            out.write("\n".join(batch))
            batch.clear()
    if batch:
        batch.append("")
        out.write("\n".join(batch))
    return written


def _parse_as_of(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate synthetic B2B leads as JSON Lines (deterministic for the same arguments).",
        epilog="example: python bench/generate.py --leads 100000 --seed 7 -o /tmp/leads.jsonl",
    )
    parser.add_argument("--leads", "-n", type=int, default=1000, help="number of leads (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--as-of", default=DEFAULT_AS_OF,
                        help=f"activities fall in the {WINDOW_DAYS} days before this midnight UTC "
                             f"(default {DEFAULT_AS_OF})")
    parser.add_argument("--output", "-o", default="-", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    if args.leads < 0:
        parser.error("--leads must be 0 or more")
    try:
        as_of = _parse_as_of(args.as_of)
        Clock(as_of, WINDOW_DAYS)
    except ValueError as err:
        parser.error(f"--as-of {args.as_of!r}: {err}")
    if args.output == "-":
        sys.stdout.reconfigure(encoding="utf-8", newline="\n")
        write_leads(args.leads, args.seed, sys.stdout, as_of)
        sys.stdout.flush()
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as out:
            write_leads(args.leads, args.seed, out, as_of)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `generate.py | head`
        sys.stderr.close()
        sys.exit(0)
