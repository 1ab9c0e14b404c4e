"""Rulepack validation: one test per kind of error, each asserting the exact `file:line: what; fix` line.

Line numbers are counted in the TOML snippets; each test names the line it expects in a comment.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from leadscore import PluginManager
from leadscore.errors import RulepackErrors
from leadscore.rulepack.loader import parse_rulepacks


@pytest.fixture(scope="module")
def registry():
    pm = PluginManager(entry_points=False)
    specs = [s for e in pm.get_signal_extractors() for s in e.provides]
    return specs, pm.get_decay_policies()


@pytest.fixture
def errors_of(tmp_path: Path, registry, firr_base_text):
    """Write each snippet to tmp_path, parse them together and return (paths, error lines)."""
    specs, policies = registry

    def run(*snippets: str, with_base: bool = False) -> tuple[list[str], list[str]]:
        texts = [("firr-base.toml", firr_base_text)] if with_base else []
        paths = []
        for index, snippet in enumerate(snippets):
            path = tmp_path / f"pack{index}.toml"
            text = textwrap.dedent(snippet)
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
            texts.append((str(path), text))
        with pytest.raises(RulepackErrors) as info:
            parse_rulepacks(texts, specs, policies)
        lines = [e.line() for e in info.value.errors]
        assert str(info.value) == "\n".join(lines)
        return paths, lines

    return run


def test_valid_pack_parses(tmp_path, registry):
    specs, policies = registry
    text = textwrap.dedent(HEADER) + textwrap.dedent("""\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 20
        reason = "VP title"
        when = { signal = "title.seniority", eq = "vp" }
        """)
    packs, vocabulary = parse_rulepacks([(str(tmp_path / "ok.toml"), text)], specs, policies)
    [pack] = packs
    assert (pack.name, pack.version, [r.id for r in pack.rules]) == ("acme", "1.0.0", ["fit.vp"])
    assert pack.rules[0].line == 11  # HEADER is lines 1-10
    assert "pricing_page_visit" in vocabulary["activity_types"]


# Lines 1-10 of most snippets below.
HEADER = """\
    [pack]
    name = "acme"
    version = "1.0.0"

    [categories.fit]
    max = 50

    [categories.intent]
    max = 60

    """


def test_unknown_signal_suggests_the_closest(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 20
        reason = "VP title"
        when = { signal = "title.seniorty", eq = "vp" }
        """)
    # The `when` line is line 16 (the rule table starts at 11).
    assert lines == [f"{path}:16: rule 'fit.vp': unknown signal 'title.seniorty'; did you mean 'title.seniority'?"]


def test_unknown_decay_name(errors_of):
    [path], lines = errors_of(HEADER + """\
        [decay.web]
        kind = "half_life"
        half_life_days = 14

        [[rules]]
        id = "intent.pricing"
        category = "intent"
        points = 22
        decay = "webb"
        on = "pricing_page_visit"
        reason = "Looked at pricing"
        """)
    # decay = "webb" is line 19.
    assert lines == [f"{path}:19: rule 'intent.pricing': unknown decay policy 'webb'; "
                     f"define [decay.webb] or use one of none, web"]


def test_unknown_decay_kind(errors_of, registry):
    [path], lines = errors_of(HEADER + """\
        [decay.web]
        kind = "exponential"
        half_life_days = 14
        """)
    # kind is line 12; the kinds offered are whatever the decay plugins registered.
    kinds = ", ".join(sorted(registry[1]))
    assert {"half_life", "linear", "none", "step", "window"} <= set(registry[1])
    assert lines == [f"{path}:12: unknown decay policy kind 'exponential' in decay 'web'; use one of {kinds}"]


def test_unknown_category(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "intent.pricing"
        category = "intnet"
        points = 22
        on = "pricing_page_visit"
        reason = "Looked at pricing"
        """)
    # category is line 13.
    assert lines == [f"{path}:13: rule 'intent.pricing': unknown category 'intnet'; "
                     f"declare [categories.intnet] or use one of fit, intent"]


@pytest.mark.parametrize(("condition", "message"), [
    ('{ signal = "company.employees", gte = "100" }',
     "`gte` on 'company.employees' (int) needs a whole number, not '100'"),
    ('{ signal = "title.seniority", gt = 3 }',
     "`gt` on 'title.seniority' (str) needs a number or date-time signal; compare strings with eq / in / matches, "
     "not 3"),
    ('{ signal = "email.is_business", eq = "yes" }',
     "`eq` on 'email.is_business' (bool) needs true or false, not 'yes'"),
    ('{ signal = "company.annual_revenue", between = [250000000, 50000000] }',
     "`between` on 'company.annual_revenue' (number) needs [low, high] with low <= high on a number or date-time "
     "signal, not [250000000, 50000000]"),
    ('{ signal = "company.employees", in = [] }',
     "`in` on 'company.employees' (int) needs a non-empty list, not []"),
])
def test_wrong_value_type_for_the_operator(errors_of, condition, message):
    [path], lines = errors_of(HEADER + f"""\
        [[rules]]
        id = "fit.size"
        category = "fit"
        points = 15
        reason = "Big company"
        when = {condition}
        """)
    assert lines == [f"{path}:16: rule 'fit.size': {message}"]


def test_value_outside_a_signals_vocabulary(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 20
        reason = "VP title"
        when = { signal = "title.seniority", eq = "vice_president" }
        """)
    assert lines == [f"{path}:16: rule 'fit.vp': 'vice_president' is not a value of 'title.seniority'; "
                     f"use one of c_level, vp, director, manager, individual, student"]


def test_duplicate_rule_id(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 20
        reason = "VP title"
        when = { signal = "title.seniority", eq = "vp" }

        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 15
        reason = "Director title"
        when = { signal = "title.seniority", eq = "director" }
        """)
    # First rule at line 11; the second rule's id is line 19.
    assert lines == [f"{path}:19: duplicate rule id 'fit.vp' (first defined at line 11); give each rule a unique "
                     f"id; to change a rule of another pack, reuse its id in a higher-priority pack"]


def test_bands_not_increasing(errors_of):
    [path], lines = errors_of("""\
        [pack]
        name = "acme"
        version = "1.0.0"

        [[bands]]
        name = "early"
        min = 0

        [[bands]]
        name = "engaged"
        min = 30

        [[bands]]
        name = "mql"
        min = 30
        """)
    # The mql band's min is line 15.
    assert lines == [f"{path}:15: band 'mql': bands not increasing: min 30 is not above 'engaged' (30); "
                     f"list bands from lowest to highest with strictly increasing min"]


def test_invalid_regex(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "fit.founder"
        category = "fit"
        points = 25
        reason = "Founder"
        when = { signal = "title.text", matches = "(co-)?founder|(ceo" }
        """)
    # `when` is line 16; RE2 names the unclosed group.
    assert lines == [f"{path}:16: rule 'fit.founder': invalid regex '(co-)?founder|(ceo' for 'title.text': "
                     f"missing ): (co-)?founder|(ceo; write an RE2 regular expression (Python syntax without "
                     f"backreferences or lookaround); it must match the whole value"]


def test_malformed_toml(errors_of):
    [path], lines = errors_of("""\
        [pack]
        name = "acme"
        version = "1.0.0"

        [[rules]]
        id = "fit.vp"
        category = fit
        """)
    # `category = fit` (line 7) is a bare word where TOML needs a quoted string.
    [line] = lines
    assert line.startswith(f"{path}:7: malformed TOML: ")
    assert line.endswith("; fix the syntax (strings need quotes, tables need [brackets])")
    assert "(at line" not in line  # the position is in `file:line`, not repeated


def test_unknown_activity_type_in_on(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "intent.pricing"
        category = "intent"
        points = 22
        on = "pricing_page_vist"
        reason = "Looked at pricing"
        """)
    # `on` is line 15.
    assert lines == [f"{path}:15: rule 'intent.pricing': unknown activity type 'pricing_page_vist' in `on`; "
                     f"did you mean 'pricing_page_visit'? declare new types in [vocabulary] activity_types"]


def test_activity_type_declared_in_vocabulary_is_known(tmp_path, registry):
    specs, policies = registry
    text = textwrap.dedent(HEADER) + textwrap.dedent("""\
        [vocabulary]
        activity_types = ["roi_calculator"]

        [[rules]]
        id = "intent.roi"
        category = "intent"
        points = 18
        on = "roi_calculator"
        reason = "Used the ROI calculator"
        """)
    [pack], _ = parse_rulepacks([(str(tmp_path / "roi.toml"), text)], specs, policies)
    assert pack.rules[0].on == ("roi_calculator",)


def test_unreachable_band(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[bands]]
        name = "early"
        min = 0

        [[bands]]
        name = "sales_ready"
        min = 120
        """)
    # fit max 50 + intent max 60 = 110 < 120; the sales_ready min is line 17.
    assert lines == [f"{path}:17: band 'sales_ready' is unreachable: it needs 120 points but the total can reach "
                     f"at most 110; lower the band's min or raise the category/total caps"]


def test_unreachable_band_under_a_total_cap(errors_of):
    [path], lines = errors_of(HEADER + """\
        [total]
        max = 100

        [[bands]]
        name = "early"
        min = 0

        [[bands]]
        name = "hot"
        min = 105
        """)
    # [total] max = 100 is tighter than the categories' 110; the hot band's min is line 20.
    assert lines == [f"{path}:20: band 'hot' is unreachable: it needs 105 points but the total can reach "
                     f"at most 100; lower the band's min or raise the category/total caps"]


def test_disable_of_a_nonexistent_rule(errors_of):
    [path], lines = errors_of("""\
        [pack]
        name = "acme"
        version = "1.0.0"
        extends = ["firr-base"]
        priority = 10
        disable = ["intent.email-opens"]
        """, with_base=True)
    # firr-base has intent.email-open, not intent.email-opens; `disable` is line 6.
    assert lines == [f"{path}:6: disable names rule 'intent.email-opens', which no loaded rulepack defines; "
                     f"check the id (leadscore rulepacks --rules lists them)"]


def test_two_packs_of_equal_priority_both_define_bands(errors_of):
    [path], lines = errors_of("""\
        [pack]
        name = "acme"
        version = "1.0.0"
        extends = ["firr-base"]

        [[bands]]
        name = "cold"
        min = 0

        [[bands]]
        name = "hot"
        min = 50
        """, with_base=True)
    # Both acme and firr-base are priority 0, so composing them could not say whose bands win.
    # The error points at acme's first [[bands]] (line 6).
    assert lines == [f"{path}:6: rulepacks firr-base (firr-base.toml), acme ({path}) both define bands at "
                     f"priority 0; give the more specific pack a higher priority, or drop one [[bands]] list"]


def test_several_errors_in_one_file_are_all_reported(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 20
        reason = "VP title"
        when = { signal = "title.seniorty", eq = "vp" }

        [[rules]]
        id = "intent.pricing"
        category = "intent"
        points = "22"
        on = "pricing_page_visit"
        reason = "Looked at pricing"

        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 15
        reason = "Director"
        when = { signal = "title.seniority", eq = "director" }

        [[bands]]
        name = "early"
        min = 0

        [[bands]]
        name = "engaged"
        min = 0
        """)
    # In file order: the typo'd signal (16), points as a string (21), the duplicate id (26),
    # and the band that does not go up (38).
    assert lines == [
        f"{path}:16: rule 'fit.vp': unknown signal 'title.seniorty'; did you mean 'title.seniority'?",
        f"{path}:21: rule 'intent.pricing': points must be a whole number from -1000000 to 1000000, not '22'; "
        f"e.g. points = 20 (negative for penalties)",
        f"{path}:26: duplicate rule id 'fit.vp' (first defined at line 11); give each rule a unique id; "
        f"to change a rule of another pack, reuse its id in a higher-priority pack",
        f"{path}:38: band 'engaged': bands not increasing: min 0 is not above 'early' (0); "
        f"list bands from lowest to highest with strictly increasing min",
    ]


def test_category_and_signal_errors_are_reported_together(errors_of):
    # A reviewer wants the whole list at once: a category typo in one rule must not hide behind a
    # signal typo in another.
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 20
        reason = "VP title"
        when = { signal = "title.seniorty", eq = "vp" }

        [[rules]]
        id = "intent.pricing"
        category = "intnet"
        points = 22
        on = "pricing_page_visit"
        reason = "Looked at pricing"
        """)
    assert lines == [
        f"{path}:16: rule 'fit.vp': unknown signal 'title.seniorty'; did you mean 'title.seniority'?",
        f"{path}:20: rule 'intent.pricing': unknown category 'intnet'; "
        f"declare [categories.intnet] or use one of fit, intent",
    ]


def test_errors_in_two_files_are_all_reported(errors_of):
    paths, lines = errors_of(
        HEADER + """\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = 20
        reason = "VP title"
        when = { signal = "title.seniorty", eq = "vp" }
        """,
        """\
        [pack]
        name = "other"
        version = 2
        """,
    )
    assert lines == [
        f"{paths[0]}:16: rule 'fit.vp': unknown signal 'title.seniorty'; did you mean 'title.seniority'?",
        f"{paths[1]}:3: [pack] version is missing or not a string; add version = \"1.0.0\"",
    ]


def test_every_problem_of_a_rule_is_reported_not_only_the_first(errors_of):
    (path,), lines = errors_of(HEADER + """\
        [[rules]]
        id = "fit.mixed"
        category = "fit"
        points = 5
        reason = "x"
        when = { all = [
            { signal = "title.senority", eq = "vp" },
            { any = [{ signal = "company.employees", eq = "many" }, { signal = "title.seniority", eq = "boss" }] },
        ] }

        [[bands]]
        name = "hot"
        min = 10
        requires = [{ signal = "email.tpye", eq = "business" }, { signal = "email.type", eq = "work" }]
        """)
    assert [line.split(": ", 1)[1] for line in lines] == [
        "rule 'fit.mixed': unknown signal 'title.senority'; did you mean 'title.seniority'?",
        "rule 'fit.mixed': `eq` on 'company.employees' (int) needs a whole number, not 'many'",
        "rule 'fit.mixed': 'boss' is not a value of 'title.seniority'; use one of c_level, vp, director, manager, "
        "individual, student",
        "band 'hot' requires: unknown signal 'email.tpye'; did you mean 'email.type'?",
        "band 'hot' requires: 'work' is not a value of 'email.type'; use one of business, personal, disposable, "
        "education, invalid",
    ]
    assert all(line.startswith(f"{path}:") for line in lines)


def test_declared_custom_fields_are_type_checked(errors_of):
    (path,), lines = errors_of(HEADER + """\
        [fields]
        time_on_site = "number"
        plan = { type = "str", values = ["free", "pro"] }
        seats = "integer"

        [[rules]]
        id = "fit.plan"
        category = "fit"
        points = 5
        reason = "x"
        when = [{ signal = "fields.plan", eq = "enterprise" }, { signal = "fields.time_on_site", gte = "300" }]
        """)
    assert [line.split(": ", 1)[1] for line in lines] == [
        "[fields] seats: unknown type 'integer'; use one of str, number, int, bool, e.g. seats = \"number\" or "
        "seats = { type = \"str\", values = [\"a\", \"b\"] }",
        "rule 'fit.plan': 'enterprise' is not a value of 'fields.plan'; use one of free, pro",
        "rule 'fit.plan': `gte` on 'fields.time_on_site' (number) needs a number, not '300'",
    ]


def test_one_field_declared_with_two_types_is_an_error(errors_of):
    paths, lines = errors_of(HEADER + '[fields]\nseats = "number"\n',
                             HEADER.replace('"acme"', '"other"') + '[fields]\nseats = "str"\n')
    assert lines == [f"{paths[1]}:12: [fields] seats is declared as str here and as number in {paths[0]}; "
                     "declare each custom field with one type"]


# --- limits: what `check` accepts always scores (issue 12; docs/rulepacks.md, Limits) ----------

def _rule(points: str = "20", extra: str = "") -> str:
    return HEADER + f"""\
        [[rules]]
        id = "fit.vp"
        category = "fit"
        points = {points}
        reason = "VP title"
        when = {{ signal = "title.seniority", eq = "vp" }}
        {extra}
        """


@pytest.mark.parametrize("points", ["1000001", "-1000001", "1_000_000_000_000_000_000", "10" + "0" * 29])
def test_points_beyond_a_million_are_refused(errors_of, points):
    [path], lines = errors_of(_rule(points))
    shown = repr(int(points.replace("_", "")))
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    assert lines == [f"{path}:14: rule 'fit.vp': points must be a whole number from -1000000 to 1000000, not "
                     f"{shown}; e.g. points = 20 (negative for penalties)"]


def test_points_at_the_limit_are_accepted(tmp_path, registry):
    specs, policies = registry
    [pack], _ = parse_rulepacks([("p.toml", textwrap.dedent(_rule("-1000000")))], specs, policies)
    assert pack.rules[0].points == -1_000_000


def test_a_number_of_thousands_of_digits_is_one_line(errors_of):
    [path], lines = errors_of(_rule("9" * 5000))
    assert lines == [f"{path}:14: malformed TOML: a number with thousands of digits; points and caps lie between "
                     f"-1000000 and 1000000"]


@pytest.mark.parametrize(("table", "message"), [
    ("[total]\nmax = -50", "total max -50 is below 0; a max caps high scores: make it 0 or more"),
    ("[total]\nmin = 10", "total min 10 is above 0; a min floors low scores: make it 0 or less"),
    ("[total]\nmax = 10000000", "total max must be a whole number from -1000000 to 1000000, not 10000000; "
                                "e.g. max = 100"),
    ("[categories.readiness]\nmin = 5", "category 'readiness' min 5 is above 0; a min floors low scores: make it "
                                        "0 or less"),
])
def test_caps_that_move_every_lead_or_exceed_the_limit_are_refused(errors_of, table, message):
    [path], lines = errors_of(HEADER + table.replace("\n", "\n        ") + "\n")
    assert len(lines) == 1 and lines[0].split(": ", 1)[1] == message


def test_max_points_below_min_points(errors_of):
    [path], lines = errors_of(HEADER + """\
        [[rules]]
        id = "intent.visits"
        category = "intent"
        points = 5
        on = "page_view"
        count = "each"
        max_points = 5
        min_points = 10
        reason = "Visits"
        """)
    assert lines == [f"{path}:17: rule 'intent.visits': max_points 5 is below min_points 10; make min_points <= "
                     f"max_points (they bound the rule's points from below and above)"]


@pytest.mark.parametrize(("decay", "message"), [
    ('kind = "window"\n        days = nan', "`days` must be a number of days above 0 and at most 36500, not nan"),
    ('kind = "linear"\n        lifespan_days = inf',
     "`lifespan_days` must be a number of days above 0 and at most 36500, not inf"),
])
def test_decay_of_nan_or_infinite_days_is_refused(errors_of, decay, message):
    [path], lines = errors_of(HEADER + f"""\
        [decay.web]
        {decay}
        """)
    kind = decay.split('"')[1]
    assert lines == [f"{path}:11: decay 'web' ({kind}): {message}"]


def _nested_rule(depth: int) -> str:
    when = '{ signal = "title.seniority", eq = "vp" }'
    for _ in range(depth - 1):
        when = f"{{ all = [{when}] }}"
    return _rule(extra="").replace('when = { signal = "title.seniority", eq = "vp" }', f"when = {when}")


def test_conditions_nest_at_most_32_levels(errors_of, tmp_path, registry):
    specs, policies = registry
    parse_rulepacks([("ok.toml", textwrap.dedent(_nested_rule(32)))], specs, policies)
    [path], lines = errors_of(_nested_rule(33))
    assert lines == [f"{path}:16: rule 'fit.vp': the condition nests all / any / not more than 32 levels deep; "
                     f"flatten it (all = [a, all = [b, c]] is all = [a, b, c])"]


def test_toml_nested_hundreds_deep_is_one_line(errors_of):
    [path], lines = errors_of(_nested_rule(300))
    assert lines == [f"{path}:16: malformed TOML: arrays or inline tables nested hundreds of levels deep; a rulepack "
                     f"condition nests at most 32 levels of all / any / not; flatten it"]
