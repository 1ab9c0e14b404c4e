"""Built-in decay curves: none, step, linear, half_life and window.

A rulepack names an instance: ``[decay.web] kind = "half_life"`` with ``half_life_days = 30``,
and a rule uses it with ``decay = "web"``. Ages are in days from the line's ``observed_at`` to the
scoring time; a negative age counts as 0. Every factor lies in [0, 1], is 1.0 at age 0 and never
increases with age.

- ``none``: always 1.0.
- ``step``: ``steps = [[30, 0.5], [90, 0.0]]``: from each age on, the factor drops to the given
  value (ages increasing, factors not increasing).
- ``linear``: ``lifespan_days = 90``: fades in a straight line to 0 at the lifespan (MadKudu-style).
- ``half_life``: ``half_life_days = 14``: halves every N days.
- ``window``: ``days = 30``: counts in full up to N days old, then not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from leadscore.hookspecs import hookimpl
from leadscore.model import DecayPolicy

# A century, as for pattern windows: anything longer is a typo (or inf), not a policy.
MAX_DAYS = 36500


def _positive(params: Mapping[str, Any], key: str) -> float:
    if key not in params:
        raise ValueError(f"missing `{key}`; add e.g. {key} = 30")
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_DAYS:
        # `not 0 < value` also refuses nan, which every comparison would silently skip.
        raise ValueError(f"`{key}` must be a number of days above 0 and at most {MAX_DAYS}, not {value!r}")
    return float(value)


def _only(params: Mapping[str, Any], *allowed: str) -> None:
    extra = sorted(set(params) - set(allowed) - {"kind"})
    if extra:
        raise ValueError(f"unknown parameter `{extra[0]}`; this kind takes {', '.join(allowed) or 'no parameters'}")


def make_none(params: Mapping[str, Any]) -> Callable[[float], float]:
    _only(params)
    return lambda age: 1.0


def make_step(params: Mapping[str, Any]) -> Callable[[float], float]:
    _only(params, "steps")
    steps = params.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValueError("`steps` must be a list of [age_days, factor] pairs, e.g. [[30, 0.5], [90, 0.0]]")
    pairs: list[tuple[float, float]] = []
    for step in steps:
        if (not isinstance(step, list) or len(step) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in step)):
            raise ValueError(f"each step must be [age_days, factor], not {step!r}")
        age, factor = float(step[0]), float(step[1])
        if not 0.0 <= factor <= 1.0 or not 0 < age <= MAX_DAYS:
            raise ValueError(f"step {step!r}: age must be above 0 and at most {MAX_DAYS} days, and factor "
                             f"between 0 and 1")
        if pairs and (age <= pairs[-1][0] or factor > pairs[-1][1]):
            raise ValueError(f"step {step!r}: ages must increase and factors must not increase")
        pairs.append((age, factor))

    def factor(age: float) -> float:
        result = 1.0
        for start, value in pairs:
            if age < start:
                break
            result = value
        return result

    return factor


def make_linear(params: Mapping[str, Any]) -> Callable[[float], float]:
    _only(params, "lifespan_days")
    lifespan = _positive(params, "lifespan_days")
    return lambda age: max(0.0, 1.0 - max(age, 0.0) / lifespan)


def make_half_life(params: Mapping[str, Any]) -> Callable[[float], float]:
    _only(params, "half_life_days")
    half_life = _positive(params, "half_life_days")
    return lambda age: 0.5 ** (max(age, 0.0) / half_life)


def make_window(params: Mapping[str, Any]) -> Callable[[float], float]:
    _only(params, "days")
    days = _positive(params, "days")
    return lambda age: 1.0 if age <= days else 0.0


# --- the same curves for the columnar engine: SQL of the age in days, the same IEEE operations ------


def _sql() -> Any:
    # Imported when the columnar engine asks (sqlglot is its dependency, not the core's).
    from sqlglot import exp

    from leadscore.columnar import sql as q

    return exp, q


def sql_none(params: Mapping[str, Any]) -> Callable[[Any], Any]:
    _, q = _sql()
    return lambda age: q.lit(1.0)


def sql_step(params: Mapping[str, Any]) -> Callable[[Any], Any]:
    exp, q = _sql()
    pairs = [(float(a), float(f)) for a, f in params["steps"]]

    def factor(age: Any) -> Any:
        out = q.lit(pairs[-1][1])
        for index in range(len(pairs) - 1, -1, -1):
            before = 1.0 if index == 0 else pairs[index - 1][1]
            out = q.case([(exp.LT(this=age, expression=q.lit(pairs[index][0])), q.lit(before))], out)
        return out

    return factor


def sql_linear(params: Mapping[str, Any]) -> Callable[[Any], Any]:
    exp, q = _sql()
    lifespan = float(params["lifespan_days"])
    return lambda age: q.fn("greatest", q.lit(0.0), exp.Sub(this=q.lit(1.0), expression=exp.Div(
        this=q.fn("greatest", age, q.lit(0.0)), expression=q.lit(lifespan))))


def sql_half_life(params: Mapping[str, Any]) -> Callable[[Any], Any]:
    exp, q = _sql()
    half = float(params["half_life_days"])
    return lambda age: q.fn("pow", q.lit(0.5), exp.Div(this=q.fn("greatest", age, q.lit(0.0)), expression=q.lit(half)))


def sql_window(params: Mapping[str, Any]) -> Callable[[Any], Any]:
    exp, q = _sql()
    days = float(params["days"])
    return lambda age: q.case([(exp.LTE(this=age, expression=q.lit(days)), q.lit(1.0))], q.lit(0.0))


@hookimpl
def leadscore_decay_policies():
    return [
        DecayPolicy("none", make_none, "no decay", (), sql_none),
        DecayPolicy("step", make_step, "factor drops at given ages", ("steps",), sql_step),
        DecayPolicy("linear", make_linear, "linear fade to zero", ("lifespan_days",), sql_linear),
        DecayPolicy("half_life", make_half_life, "exponential halving", ("half_life_days",), sql_half_life),
        DecayPolicy("window", make_window, "full value inside a window, nothing after", ("days",), sql_window),
    ]
