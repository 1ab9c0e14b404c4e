"""Account signals and the built-in account roll-up strategies.

Signals (present when the run groups leads into accounts, see leadscore.accounts):
``account.id``, ``account.contacts``, ``account.engaged_contacts``,
``account.senior_engaged_contacts``, ``account.functions_engaged``, ``account.high_intent_30d``
and ``account.best_lead_score``, plus one ``account.same_account.*`` count per distinct
``same_account`` condition in the rulepacks.

Roll-up strategies (``[accounts] rollup = ...`` in a rulepack):

- ``sum_capped``: the sum of the contacts' totals, capped at ``cap`` (default 300);
- ``mean_scored``: the mean total of the contacts that scored above zero;
- ``role_weighted``: each contact's total times a weight for its seniority (``weights`` table;
  default c_level 1.5, vp 1.3, director 1.2, manager 1.0, individual 0.8, student 0), summed and
  capped at ``cap`` - a buying committee of senior people counts for more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from leadscore.accounts import ACCOUNT_SIGNALS, Contact
from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import (
    EMPTY,
    ExtractContext,
    Lead,
    RollupStrategy,
    Signal,
    SignalExtractor,
)

DEFAULT_WEIGHTS = {"c_level": 1.5, "vp": 1.3, "director": 1.2, "manager": 1.0, "individual": 0.8, "student": 0.0}


# It hands ctx.account on as signals unchanged: whatever reads them declares them.
@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    account = ctx.account
    if not account:
        return
    evidence = f"account {account.get('account.id')}"
    detail = getattr(account, "evidence", EMPTY)
    for name, value in account.items():
        yield Signal(name, value, None, detail.get(name, evidence))


def _cap(params: Mapping[str, Any], default: int = 300) -> int:
    cap = params.get("cap", default)
    return int(cap) if isinstance(cap, (int, float)) and not isinstance(cap, bool) else default


def sum_capped(contacts: Sequence[Contact], params: Mapping[str, Any]) -> tuple[int, list[str]]:
    total = sum(c.total for c in contacts)
    cap = _cap(params)
    reasons = [f"sum of {len(contacts)} contact scores: {total}"]
    if total > cap:
        reasons.append(f"capped at {cap}")
    return min(total, cap), reasons


def mean_scored(contacts: Sequence[Contact], params: Mapping[str, Any]) -> tuple[int, list[str]]:
    scored = [c.total for c in contacts if c.total > 0]
    if not scored:
        return 0, ["no contact scored above zero"]
    mean = int(sum(scored) / len(scored) + 0.5)
    return mean, [f"mean of {len(scored)} scored contacts: {mean}"]


def role_weighted(contacts: Sequence[Contact], params: Mapping[str, Any]) -> tuple[int, list[str]]:
    weights = {**DEFAULT_WEIGHTS, **(params.get("weights") or {})}
    total = 0.0
    for c in contacts:
        total += c.total * float(weights.get(c.seniority, 1.0))
    score = int(total + 0.5) if total >= 0 else -int(-total + 0.5)
    cap = _cap(params)
    senior = sum(1 for c in contacts if c.seniority in ("c_level", "vp", "director"))
    reasons = [f"{len(contacts)} contacts weighted by seniority ({senior} senior): {score}"]
    if score > cap:
        reasons.append(f"capped at {cap}")
    return min(score, cap), reasons


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("account", extract, ACCOUNT_SIGNALS, __doc__ or "")]


@hookimpl
def leadscore_rollup_strategies():
    return [
        RollupStrategy("sum_capped", sum_capped, "sum of contact scores, capped"),
        RollupStrategy("mean_scored", mean_scored, "mean of contacts that scored above zero"),
        RollupStrategy("role_weighted", role_weighted, "seniority-weighted sum, capped"),
    ]
