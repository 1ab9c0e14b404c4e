"""Firmographic signals: normalised industry, size and revenue (numbers and named bands), country and region.

Signals: ``company.industry`` (normalised, see INDUSTRY_ALIASES), ``company.employees`` and
``company.size_band`` (micro 1-9, small 10-99, mid_market 100-999, enterprise 1000-4999,
large_enterprise 5000+), ``company.annual_revenue`` and ``company.revenue_band`` (under_1m, 1m_10m,
10m_50m, 50m_250m, 250m_1b, over_1b), ``company.country`` (ISO 3166 alpha-2, upper case),
``company.region`` (north_america, latin_america, europe, middle_east_africa, asia_pacific, unknown),
``company.domain``, ``company.name`` and ``company.tier`` (as given by the CRM).
A rulepack adds industry aliases with ``[vocabulary.industry_aliases] "b2b software" = "software"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from leadscore.caching import BoundedCache, per_vocabulary
from leadscore.default_plugins.extract.lazy import columnar
from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import (
    Company,
    ExtractContext,
    Lead,
    Signal,
    SignalExtractor,
    SignalSpec,
)

INDUSTRY_ALIASES = {
    "saas": "software", "software": "software", "computer software": "software", "b2b software": "software",
    "information technology": "technology", "it services": "technology", "technology": "technology",
    "internet": "technology", "tech": "technology", "hardware": "technology", "telecommunications": "telecom",
    "telecom": "telecom", "fintech": "financial_services", "financial services": "financial_services",
    "banking": "financial_services", "bank": "financial_services", "insurance": "financial_services",
    "investment management": "financial_services", "finance": "financial_services",
    "healthcare": "healthcare", "health care": "healthcare", "hospital & health care": "healthcare",
    "medical devices": "healthcare", "pharmaceuticals": "healthcare", "biotech": "healthcare",
    "biotechnology": "healthcare", "manufacturing": "manufacturing", "industrial": "manufacturing",
    "automotive": "manufacturing", "retail": "retail", "e-commerce": "retail", "ecommerce": "retail",
    "consumer goods": "retail", "education": "education", "higher education": "education",
    "e-learning": "education", "edtech": "education", "government": "government", "public sector": "government",
    "non-profit": "nonprofit", "nonprofit": "nonprofit", "marketing and advertising": "marketing_services",
    "marketing": "marketing_services", "advertising": "marketing_services", "agency": "marketing_services",
    "consulting": "professional_services", "management consulting": "professional_services",
    "professional services": "professional_services", "legal": "professional_services",
    "accounting": "professional_services", "media": "media", "publishing": "media", "entertainment": "media",
    "real estate": "real_estate", "construction": "construction", "energy": "energy", "oil & energy": "energy",
    "utilities": "energy", "logistics": "logistics", "transportation": "logistics", "hospitality": "hospitality",
}

_REGION_BY_COUNTRY: dict[str, str] = {}
for _region, _codes in {
    "north_america": "US CA",
    "latin_america": "MX BR AR CL CO PE UY EC VE CR PA DO GT BO PY SV HN NI CU PR",
    "europe": "GB IE FR DE NL BE LU CH AT IT ES PT DK SE NO FI IS PL CZ SK HU RO BG GR HR SI RS EE LV LT UA MT CY"
              " BA ME MK AL MD BY RU",
    "middle_east_africa": "AE SA QA KW BH OM IL TR EG MA TN DZ NG KE ZA GH ET TZ UG JO LB IR IQ SY YE",
    "asia_pacific": "AU NZ JP KR CN HK TW SG MY TH VN PH ID IN PK BD LK NP KP MN",
}.items():
    for _code in _codes.split():
        _REGION_BY_COUNTRY[_code] = _region

COUNTRY_NAMES = {
    "usa": "US", "united states": "US", "united states of america": "US", "uk": "GB", "united kingdom": "GB",
    "great britain": "GB", "england": "GB", "germany": "DE", "france": "FR", "canada": "CA", "australia": "AU",
    "india": "IN", "netherlands": "NL", "spain": "ES", "italy": "IT", "brazil": "BR", "japan": "JP",
    "singapore": "SG", "sweden": "SE", "ireland": "IE", "switzerland": "CH", "mexico": "MX",
}

SIZE_BANDS = ((5000, "large_enterprise"), (1000, "enterprise"), (100, "mid_market"), (10, "small"), (1, "micro"))
REVENUE_BANDS = ((1e9, "over_1b"), (250e6, "250m_1b"), (50e6, "50m_250m"), (10e6, "10m_50m"), (1e6, "1m_10m"),
                 (0, "under_1m"))

PROVIDES = (
    SignalSpec("company.industry", "str", "normalised industry (unknown names pass through in snake_case)"),
    SignalSpec("company.employees", "int", "number of employees"),
    SignalSpec("company.size_band", "str", "named size band",
               ("micro", "small", "mid_market", "enterprise", "large_enterprise")),
    SignalSpec("company.annual_revenue", "number", "annual revenue in the CRM's currency"),
    SignalSpec("company.revenue_band", "str", "named revenue band",
               ("under_1m", "1m_10m", "10m_50m", "50m_250m", "250m_1b", "over_1b")),
    SignalSpec("company.country", "str", "ISO 3166 alpha-2 country code"),
    SignalSpec("company.region", "str", "sales region",
               ("north_america", "latin_america", "europe", "middle_east_africa", "asia_pacific", "unknown")),
    SignalSpec("company.domain", "str", "company web domain, lower case, without www."),
    SignalSpec("company.name", "str", "company name as given"),
    SignalSpec("company.tier", "str", "account tier from the CRM (e.g. strategic, target)"),
)


def normalise_industry(raw: str, aliases: dict | None = None) -> str:
    key = " ".join(raw.lower().replace("_", " ").split())
    if aliases and key in aliases:
        return aliases[key]
    return INDUSTRY_ALIASES.get(key) or key.replace(" & ", "_").replace(" ", "_").replace("-", "_")


def size_band(employees: int) -> str:
    return next((name for floor, name in SIZE_BANDS if employees >= floor), "micro")


def revenue_band(revenue: float) -> str:
    return next((name for floor, name in REVENUE_BANDS if revenue >= floor), "under_1m")


def normalise_country(raw: str) -> str:
    text = raw.strip()
    return COUNTRY_NAMES.get(text.lower(), text.upper())


def _company_table(vocabulary: Mapping[str, Any]) -> BoundedCache[Company, tuple[Signal, ...]]:
    # About 6 MiB at most; consecutive contacts of an account hit it.
    return BoundedCache(4096)


# Contacts of one account share their company: its signals are computed once per company value
# (and vocabulary) and the immutable Signal records reused.
_companies = per_vocabulary(_company_table)


@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> tuple[Signal, ...]:
    company = lead.company
    table = _companies(ctx.vocabulary)
    hit = table.get(company)
    if hit is None:
        hit = table.put(company, tuple(_extract(company, ctx)))
    return hit


def _extract(company: Company, ctx: ExtractContext) -> Iterator[Signal]:
    if company.industry:
        yield Signal("company.industry", normalise_industry(company.industry, ctx.vocabulary.get("industry_aliases")),
                     None, company.industry)
    if company.employees is not None:
        yield Signal("company.employees", company.employees, None, f"{company.employees} employees")
        yield Signal("company.size_band", size_band(company.employees), None, f"{company.employees} employees")
    if company.annual_revenue is not None:
        yield Signal("company.annual_revenue", company.annual_revenue, None, f"revenue {company.annual_revenue:,.0f}")
        yield Signal("company.revenue_band", revenue_band(company.annual_revenue), None,
                     f"revenue {company.annual_revenue:,.0f}")
    if company.country:
        code = normalise_country(company.country)
        yield Signal("company.country", code, None, company.country)
        yield Signal("company.region", _REGION_BY_COUNTRY.get(code, "unknown"), None, company.country)
    if company.domain:
        yield Signal("company.domain", company.domain.lower().removeprefix("www."), None, company.domain)
    if company.name:
        yield Signal("company.name", company.name, None, company.name)
    if company.tier:
        yield Signal("company.tier", company.tier.lower(), None, company.tier)


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("firmographics", extract, PROVIDES, __doc__ or "", columnar("firmographics_columnar"))]
