"""Kinds of email address: business, personal, disposable, education or invalid.

Shared by the email signal extractor, the account grouping (a business domain is an account key)
and plugins (through :mod:`leadscore.plugin`). Addresses are classified lower case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from leadscore.caching import BoundedCache

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
_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def classify(email: str, free: frozenset[str] = FREE_EMAIL_DOMAINS,
             verdicts: BoundedCache[str, str] | None = None) -> tuple[str, str]:
    """Return (type, domain) for an address (already stripped and lower-cased).

    ``verdicts`` (domain -> type of a valid address there, or "invalid") remembers each domain's
    check across calls with the same ``free`` set; the local part is checked every time.
    """
    local, at, domain = email.rpartition("@")
    kind = None if verdicts is None else verdicts.get(domain)
    if kind is None:
        kind = _domain_kind(domain, free)
        if verdicts is not None:
            verdicts.put(domain, kind)
    if kind != "invalid" and not (at and _LOCAL.fullmatch(local)):
        kind = "invalid"
    return kind, domain


def free_domains(vocabulary: Mapping[str, Any]) -> frozenset[str]:
    """The consumer mailbox domains: the built-in list plus a vocabulary's ``free_email_domains``."""
    extra = vocabulary.get("free_email_domains")
    return FREE_EMAIL_DOMAINS | frozenset(extra) if extra else FREE_EMAIL_DOMAINS


def classify_address(address: str) -> tuple[str, str]:
    """(type, domain) of an address as a CRM holds it (any case, stray spaces), by the built-in lists."""
    return classify(address.strip().lower(), FREE_EMAIL_DOMAINS, _VERDICTS)


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


# Domain verdicts of the built-in lists, shared by every caller of classify_address.
_VERDICTS: BoundedCache[str, str] = BoundedCache(20_000)
