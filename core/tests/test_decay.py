"""Built-in decay curves: their values at chosen ages, and the messages for bad parameters."""

from __future__ import annotations

import math
import re

import pytest

from leadscore import PluginManager


@pytest.fixture(scope="module")
def make():
    policies = PluginManager(entry_points=False).get_decay_policies()
    return lambda kind, /, **params: policies[kind].make(params)


def test_builtin_policy_names():
    policies = PluginManager(entry_points=False).get_decay_policies()
    assert set(policies) >= {"half_life", "linear", "none", "step", "window"}
    assert list(policies) == sorted(policies)
    assert policies["step"].params == ("steps",)
    assert policies["half_life"].params == ("half_life_days",)


def test_none(make):
    f = make("none")
    assert [f(a) for a in (0, 1, 365, 10_000)] == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(("age", "factor"), [
    (0, 1.0), (29.999, 1.0), (30, 0.5), (59, 0.5), (60, 0.25), (89.9, 0.25), (90, 0.0), (400, 0.0),
])
def test_step(make, age, factor):
    # firr-base's "web" curve: half from 30 days, a quarter from 60, nothing from 90.
    assert make("step", steps=[[30, 0.5], [60, 0.25], [90, 0.0]])(age) == factor


@pytest.mark.parametrize(("age", "factor"), [(0, 1.0), (45, 0.5), (67.5, 0.25), (90, 0.0), (120, 0.0)])
def test_linear(make, age, factor):
    assert make("linear", lifespan_days=90)(age) == pytest.approx(factor)


@pytest.mark.parametrize(("age", "factor"), [
    (0, 1.0), (14, 0.5), (28, 0.25), (7, 2 ** -0.5), (1, 0.5 ** (1 / 14)), (140, 2 ** -10),
])
def test_half_life(make, age, factor):
    assert make("half_life", half_life_days=14)(age) == pytest.approx(factor, rel=1e-12)


@pytest.mark.parametrize(("age", "factor"), [(0, 1.0), (29.5, 1.0), (30, 1.0), (30.001, 0.0), (365, 0.0)])
def test_window(make, age, factor):
    # firr-base's "email" curve: an email open counts in full for 30 days, then not at all.
    assert make("window", days=30)(age) == factor


@pytest.mark.parametrize(("kind", "params"), [
    ("none", {}), ("step", {"steps": [[30, 0.5]]}), ("linear", {"lifespan_days": 90}),
    ("half_life", {"half_life_days": 14}), ("window", {"days": 30}),
])
def test_negative_age_counts_as_zero(make, kind, params):
    # An activity stamped a little after as_of (clock skew) is brand new, never worth more than 100%.
    f = make(kind, **params)
    assert f(-5) == 1.0
    assert f(-0.001) == 1.0


def test_fractional_params_are_allowed(make):
    assert make("half_life", half_life_days=0.5)(1) == pytest.approx(0.25)
    assert make("step", steps=[[0.5, 0.9], [1.5, 0.1]])(1) == 0.9


def test_kind_key_is_accepted_beside_the_params(make):
    # The loader passes the whole [decay.<name>] table, `kind` included.
    assert make("window", kind="window", days=7)(7) == 1.0


# --- parameter validation ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "params", "message"), [
    ("half_life", {}, "missing `half_life_days`; add e.g. half_life_days = 30"),
    ("linear", {}, "missing `lifespan_days`; add e.g. lifespan_days = 30"),
    ("window", {}, "missing `days`; add e.g. days = 30"),
    ("window", {"days": 0}, "`days` must be a number of days above 0 and at most 36500, not 0"),
    ("half_life", {"half_life_days": -14}, "`half_life_days` must be a number of days above 0 and at most 36500, not -14"),
    ("linear", {"lifespan_days": "90"}, "`lifespan_days` must be a number of days above 0 and at most 36500, not '90'"),
    ("window", {"days": True}, "`days` must be a number of days above 0 and at most 36500, not True"),
    ("window", {"days": float("nan")}, "`days` must be a number of days above 0 and at most 36500, not nan"),
    ("linear", {"lifespan_days": float("inf")}, "`lifespan_days` must be a number of days above 0 and at most 36500, not inf"),
    ("half_life", {"half_life_days": 36501}, "`half_life_days` must be a number of days above 0 and at most 36500, not 36501"),
    ("window", {"days": 30, "hours": 2}, "unknown parameter `hours`; this kind takes days"),
    ("half_life", {"days": 14}, "unknown parameter `days`; this kind takes half_life_days"),
    ("none", {"days": 3}, "unknown parameter `days`; this kind takes no parameters"),
    ("step", {}, "`steps` must be a list of [age_days, factor] pairs, e.g. [[30, 0.5], [90, 0.0]]"),
    ("step", {"steps": []}, "`steps` must be a list of [age_days, factor] pairs, e.g. [[30, 0.5], [90, 0.0]]"),
    ("step", {"steps": [30, 0.5]}, "each step must be [age_days, factor], not 30"),
    ("step", {"steps": [[30, 0.5, 1]]}, "each step must be [age_days, factor], not [30, 0.5, 1]"),
    ("step", {"steps": [[30, "half"]]}, "each step must be [age_days, factor], not [30, 'half']"),
    ("step", {"steps": [[True, 0.5]]}, "each step must be [age_days, factor], not [True, 0.5]"),
    ("step", {"steps": [[30, 1.5]]}, "step [30, 1.5]: age must be above 0 and at most 36500 days, and factor between 0 and 1"),
    ("step", {"steps": [[0, 0.5]]}, "step [0, 0.5]: age must be above 0 and at most 36500 days, and factor between 0 and 1"),
    ("step", {"steps": [[30, -0.1]]}, "step [30, -0.1]: age must be above 0 and at most 36500 days, and factor between 0 and 1"),
    ("step", {"steps": [[float("nan"), 0.5]]}, "step [nan, 0.5]: age must be above 0 and at most 36500 days, and factor between 0 and 1"),
    ("step", {"steps": [[60, 0.5], [30, 0.25]]}, "step [30, 0.25]: ages must increase and factors must not increase"),
    ("step", {"steps": [[30, 0.25], [60, 0.5]]}, "step [60, 0.5]: ages must increase and factors must not increase"),
    ("step", {"steps": [[30, 0.5], [30, 0.25]]}, "step [30, 0.25]: ages must increase and factors must not increase"),
])
def test_bad_params(make, kind, params, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        make(kind, **params)


def test_bad_params_are_reported_at_the_decay_table(tmp_path):
    from leadscore.errors import RulepackErrors
    from leadscore.rulepack.loader import parse_rulepacks

    pm = PluginManager(entry_points=False)
    text = '[pack]\nname = "p"\nversion = "1"\n\n[decay.web]\nkind = "half_life"\nhalf_life = 14\n'
    path = str(tmp_path / "p.toml")
    with pytest.raises(RulepackErrors) as info:
        parse_rulepacks([(path, text)], [s for e in pm.get_signal_extractors() for s in e.provides],
                        pm.get_decay_policies())
    assert [e.line() for e in info.value.errors] == [
        f"{path}:5: decay 'web' (half_life): unknown parameter `half_life`; this kind takes half_life_days"]


def test_very_old_activity_decays_to_zero_not_below(make):
    f = make("half_life", half_life_days=1)
    assert 0.0 <= f(1e6) < 1e-300
    assert f(math.inf) == 0.0
    assert make("linear", lifespan_days=1)(math.inf) == 0.0
