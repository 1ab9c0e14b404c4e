"""Bands by share of leads (min = "top 5%"): parsing, the threshold arithmetic, and a run that sets them."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone

import pytest

from leadscore import Engine, PluginManager, score
from leadscore.errors import ConfigurationError, RulepackErrors
from leadscore.model import Lead
from leadscore.rulepack.schema import BandDef
from leadscore.scoring.bands import UNREACHABLE, share_thresholds

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
PACK = """
[pack]
name = "shares"
version = "1"

[categories.fit]

[[rules]]
id = "fit.seats"
category = "fit"
points = 1
reason = "one point a seat"
when = { signal = "fields.seats", gte = 1 }

[[rules]]
id = "fit.big"
category = "fit"
points = 10
reason = "ten seats or more"
when = { signal = "fields.seats", gte = 10 }

[[bands]]
name = "low"
min = 0

[[bands]]
name = "warm"
min = "top 40%"

[[bands]]
name = "hot"
min = "top 10%"
"""


def bands(*mins: int | float) -> list[BandDef]:
    return [BandDef(f"b{i}", 0, share=m) if isinstance(m, float) else BandDef(f"b{i}", m)
            for i, m in enumerate(mins)]


@pytest.mark.parametrize(("mins", "totals", "expected"), [
    # 5% of 100 leads is the 5th best total, exactly.
    ((0, 0.05), list(range(100)), [0, 95]),
    # ceil(0.1 x 7) = 1: the best lead alone.
    ((0, 0.1), [5, 9, 1, 9, 3, 2, 8], [0, 9]),
    # A share band that ranks no higher than the band below is raised above it.
    ((0, 30, 0.5), [1, 2, 3, 4], [0, 30, 31]),
    # No lead of this band set: unreachable.
    ((0, 0.2), [], [0, UNREACHABLE]),
])
def test_share_thresholds(mins, totals, expected):
    assert share_thresholds(bands(*mins), totals) == expected


def test_ties_at_the_threshold_all_qualify(tmp_path):
    path = tmp_path / "shares.toml"
    path.write_text(PACK)
    leads = [Lead(f"L-{i}", fields={"seats": seats}) for i, seats in enumerate([12, 12, 12, 3, 2, 1, 1, 1, 1, 1])]
    cards = list(score(leads, rulepacks=[path], as_of=AS_OF, plugins=PluginManager(entry_points=False)))
    # Totals 11, 11, 11, then 1 x7. top 10% of 10 leads is the best 1, whose total 11 three share:
    # all three are hot. top 40% is the 4th best, 1, which the other seven share: all warm.
    assert [c.band for c in cards] == ["hot"] * 3 + ["warm"] * 7


def test_the_engine_refuses_to_band_before_the_shares_are_set(tmp_path):
    path = tmp_path / "shares.toml"
    path.write_text(PACK)
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[path], as_of=AS_OF) as engine:
        assert engine.needs_shares
        with pytest.raises(ConfigurationError) as caught:
            list(engine.score([Lead("L-1")]))
        assert str(caught.value) == (
            'bands: a band\'s min is a share of leads ("top N%"), which needs every lead scored once first; call '
            "Engine.resolve_shares(leads) before Engine.score (leadscore score and explain do)")
        leads = [Lead(f"L-{i}", fields={"seats": i}) for i in range(20)]
        # Totals: 0 once, 1 nine times, 11 ten times. The 8th best (top 40%) and the 2nd best (top
        # 10%) are both 11: hot is raised to 12, one above warm, and no lead reaches it.
        assert engine.resolve_shares(leads) == [("warm", "top 40%", 11, 20), ("hot", "top 10%", 12, 20)]
        assert [c.band for c in engine.score(leads)][-3:] == ["warm", "warm", "warm"]


@pytest.mark.parametrize(("mins", "message"), [
    (('"top 0%"', '"top 5%"'), "band 'b1': min must be a whole number from -1000000 to 1000000 or a share of leads such as \"top 5%\", not 'top 0%'"),
    (('"top 5%"', '"top 20%"'), "band 'b2': bands not increasing: 'top 20%' is not a smaller share than 'b1' (top 5%)"),
    (('"5%"', "60"), "band 'b1': min must be a whole number from -1000000 to 1000000 or a share of leads such as \"top 5%\", not '5%'"),
])
def test_share_band_errors(tmp_path, mins, message):
    text = '[pack]\nname = "p"\nversion = "1"\n[[bands]]\nname = "b0"\nmin = 0\n' + "".join(
        f'[[bands]]\nname = "b{i + 1}"\nmin = {m}\n' for i, m in enumerate(mins))
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(RulepackErrors) as caught:
        Engine(plugins=PluginManager(entry_points=False), rulepacks=[path])
    assert any(message in e.line() for e in caught.value.errors), [e.line() for e in caught.value.errors]
