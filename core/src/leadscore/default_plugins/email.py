"""Email signals: business vs personal, disposable, education or invalid; domain and its match to the company.

Signals: ``email.type`` (business, personal, disposable, education, invalid), ``email.domain``,
``email.is_business``, ``email.matches_company``, ``email.is_role`` (info@, sales@...),
``email.is_competitor`` (domain in the vocabulary's ``competitor_domains``). A lead with no email
gets none of them, so ``exists = false`` finds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from leadscore.caching import per_vocabulary
from leadscore.hookspecs import hookimpl
from leadscore.model import ExtractContext, Lead, Signal, SignalExtractor, SignalSpec

# Consumer mailbox providers; a rulepack adds more with [vocabulary] free_email_domains.
FREE_EMAIL_DOMAINS = frozenset(
    """gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.fr yahoo.de yahoo.co.jp ymail.com rocketmail.com
    hotmail.com hotmail.co.uk hotmail.fr hotmail.de hotmail.it outlook.com outlook.fr outlook.de live.com
    live.co.uk msn.com aol.com icloud.com me.com mac.com protonmail.com proton.me pm.me gmx.com gmx.de gmx.net
    web.de t-online.de freenet.de mail.com email.com zoho.com zohomail.com yandex.com yandex.ru mail.ru
    inbox.ru bk.ru list.ru rambler.ru qq.com 163.com 126.com sina.com sohu.com naver.com hanmail.net daum.net
    rediffmail.com libero.it virgilio.it tiscali.it orange.fr wanadoo.fr free.fr laposte.net sfr.fr
    btinternet.com sky.com comcast.net verizon.net att.net sbcglobal.net bellsouth.net cox.net charter.net
    shaw.ca rogers.com sympatico.ca bigpond.com optusnet.com.au xtra.co.nz uol.com.br bol.com.br terra.com.br
    seznam.cz wp.pl o2.pl interia.pl onet.pl hushmail.com fastmail.com tutanota.com tuta.io""".split()
)

# Throwaway-inbox services: a lead that uses one does not want to be contacted.
DISPOSABLE_DOMAINS = frozenset(
    """mailinator.com guerrillamail.com guerrillamail.net sharklasers.com 10minutemail.com 10minutemail.net
    temp-mail.org tempmail.com tempmail.net tempmailo.com throwawaymail.com yopmail.com yopmail.fr trashmail.com
    trashmail.de getnada.com nada.email dispostable.com maildrop.cc mintemail.com mohmal.com emailondeck.com
    fakeinbox.com spamgourmet.com mailnesia.com moakt.com burnermail.io tempr.email discard.email
    mailcatch.com inboxkitten.com""".split()
)

ROLE_LOCAL_PARTS = frozenset(
    "info sales admin support contact hello team marketing office noreply no-reply billing webmaster enquiries inquiries".split()
)

# Academic suffixes: .edu, .ac.<cc>, .edu.<cc>.
_EDU = re.compile(r"(^|\.)(edu|ac\.[a-z]{2}|edu\.[a-z]{2})$")
# A valid address is LOCAL@DOMAIN, the two checked apart so a domain's verdict can be remembered.
_DOMAIN_LIMIT = 20_000
_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")

PROVIDES = (
    SignalSpec("email.type", "str", "kind of address", ("business", "personal", "disposable", "education", "invalid")),
    SignalSpec("email.domain", "str", "the part after @, lower case"),
    SignalSpec("email.is_business", "bool", "a syntactically valid address on a company domain"),
    SignalSpec("email.matches_company", "bool", "the email domain is the company's domain (or a subdomain of it)"),
    SignalSpec("email.is_role", "bool", "a shared mailbox such as info@ or sales@"),
    SignalSpec("email.is_competitor", "bool", "the domain is in the vocabulary's competitor_domains"),
)


def classify(email: str, free: frozenset[str] = FREE_EMAIL_DOMAINS,
             verdicts: dict[str, str] | None = None) -> tuple[str, str]:
    """Return (type, domain) for an address (already lower-cased).

    ``verdicts`` (domain -> type of a valid address there, or "invalid") remembers each domain's
    check across calls with the same ``free`` set; the local part is checked every time.
    """
    local, at, domain = email.rpartition("@")
    kind = None if verdicts is None else verdicts.get(domain)
    if kind is None:
        kind = _domain_kind(domain, free)
        if verdicts is not None:
            if len(verdicts) >= _DOMAIN_LIMIT:
                verdicts.clear()
            verdicts[domain] = kind
    if kind != "invalid" and not (at and _LOCAL.fullmatch(local)):
        kind = "invalid"
    return kind, domain


def _domain_kind(domain: str, free: frozenset[str]) -> str:
    """The type of an address on ``domain`` whose local part is valid."""
    if not _DOMAIN.fullmatch(domain):
        return "invalid"
    if domain in DISPOSABLE_DOMAINS:
        return "disposable"
    if domain in free:
        return "personal"
    if _EDU.search(domain):
        return "education"
    return "business"


def _build_entry(vocabulary: Mapping[str, Any]) -> tuple[frozenset[str], Any, dict[str, str]]:
    """(free domains, competitor domains, domain verdicts for classify) of one vocabulary."""
    extra_free = vocabulary.get("free_email_domains")
    free = FREE_EMAIL_DOMAINS | frozenset(extra_free) if extra_free else FREE_EMAIL_DOMAINS
    return free, vocabulary.get("competitor_domains") or (), {}


_entry = per_vocabulary(_build_entry)


def extract(lead: Lead, ctx: ExtractContext) -> tuple[Signal, ...]:
    email = lead.email
    if not email:
        return ()
    email = email.strip().lower()  # readers already did this; records built in code may not have
    if not email:
        return ()
    free, competitors, verdicts = _entry(ctx.vocabulary)
    kind, domain = classify(email, free, verdicts)
    company_domain = (lead.company.domain or "").lower().removeprefix("www.")
    matches = bool(company_domain) and (domain == company_domain or domain.endswith("." + company_domain))
    return (
        Signal("email.type", kind, None, email),
        Signal("email.domain", domain, None, email),
        Signal("email.is_business", kind == "business", None, email),
        Signal("email.matches_company", matches, None, f"{domain} vs {company_domain or 'no company domain'}"),
        Signal("email.is_role", email.partition("@")[0] in ROLE_LOCAL_PARTS, None, email),
        Signal("email.is_competitor", domain in competitors, None, domain),
    )


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("email", extract, PROVIDES, __doc__ or "")]
