"""Hook specifications: documented like pytest's, and each one exercised by a plugin test below.

The meta tests fail when someone adds a hook without documentation or without a ``test_hook_<name>``
test, the way datasette guards its plugin hooks.
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from leadscore import Engine, PluginManager, hookimpl, hookspecs
from leadscore.model import DecayPolicy, ExtractContext, Route, RulepackSource, Scorer, ScoreLine, Signal, SignalExtractor, SignalSpec

TESTS_DIR = Path(__file__).parent

HOOKS = sorted(name for name, fn in vars(hookspecs).items() if name.startswith("leadscore_") and callable(fn))


def _is_firstresult(fn) -> bool:
    return bool(getattr(fn, f"{hookspecs.PROJECT}_spec", {}).get("firstresult"))


def test_hook_list_matches_the_plugin_manager():
    assert HOOKS, "no leadscore_* hook specifications found"
    assert PluginManager(builtins=False, entry_points=False).hook_names() == HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_is_documented(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert ":returns:" in doc or ":param" in doc, f"{name} does not document its parameters or return value"
    assert "Example" in doc, f"{name} has no example"


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_documents_every_parameter(name):
    fn = getattr(hookspecs, name)
    doc = inspect.getdoc(fn) or ""
    for param in inspect.signature(fn).parameters:
        assert f":param {param}:" in doc, f"{name} does not document parameter {param!r}"


@pytest.mark.parametrize("name", HOOKS)
def test_firstresult_hookspecs_say_so(name):
    fn = getattr(hookspecs, name)
    doc = inspect.getdoc(fn) or ""
    if _is_firstresult(fn):
        assert "Stops at the first non-None result" in doc
    else:
        # Only firstresult hooks may promise it: a collect-all hook that said so would mislead.
        assert "Stops at the first non-None result" not in doc


def test_route_lead_is_the_only_firstresult_hook():
    assert [n for n in HOOKS if _is_firstresult(getattr(hookspecs, n))] == ["leadscore_route_lead"]


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name):
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(TESTS_DIR.glob("test_*.py")))
    assert re.search(rf"def test_hook_{name}\b", text), f"no test named test_hook_{name} in {TESTS_DIR}"


# --- one test per hook: a small plugin on a fresh manager, and the effect it has -----------------

PHONE_PACK = """\
[pack]
name = "crm-phone"
version = "1.0.0"
priority = 10

[categories.fit]
max = 50

[[rules]]
id = "fit.has-phone"
category = "fit"
points = 7
reason = "Gave a direct phone number"
when = { signal = "crm.has_phone", eq = true }

[[bands]]
name = "cold"
min = 0

[[bands]]
name = "warm"
min = 5
"""


class PhonePlugin:
    """A custom data source: whether the CRM has a phone number for the lead."""

    @hookimpl
    def leadscore_signal_extractors(self):
        def fn(lead, ctx):
            yield Signal("crm.has_phone", bool(lead.fields.get("phone")), None, "CRM phone field")

        return [SignalExtractor("crm-phone", fn, provides=(SignalSpec("crm.has_phone", "bool"),))]


def test_hook_leadscore_signal_extractors(pm, write_pack, make_lead, as_of):
    pm.register(PhonePlugin(), name="crm-phone-plugin")
    assert "crm-phone" in [e.name for e in pm.get_signal_extractors()]
    engine = Engine(plugins=pm, rulepacks=[write_pack(PHONE_PACK)], as_of=as_of)

    with_phone = engine.score_lead(make_lead("L-1", fields={"phone": "+1 415 555 0100"}))
    without = engine.score_lead(make_lead("L-2", fields={"phone": ""}))

    [line] = with_phone.ledger
    assert (line.rule_id, line.points, line.signal, line.evidence) == ("fit.has-phone", 7, "crm.has_phone",
                                                                      "CRM phone field")
    assert (with_phone.total, with_phone.band) == (7, "warm")
    assert (without.ledger, without.total, without.band) == ((), 0, "cold")


def test_hook_leadscore_signal_extractors_unknown_without_the_plugin(pm, write_pack, as_of):
    # The same pack does not load when no plugin provides the signal: the hook is what makes it known.
    from leadscore.errors import RulepackErrors

    with pytest.raises(RulepackErrors, match=r"unknown signal 'crm\.has_phone'"):
        Engine(plugins=pm, rulepacks=[write_pack(PHONE_PACK)], as_of=as_of)


ACME_PACK = """\
[pack]
name = "acme"
version = "3.2.0"
extends = ["firr-base"]
priority = 10

[[rules]]
id = "acme.partner-referral"
category = "fit"
points = 12
reason = "Referred by a partner"
when = { signal = "lead.channel", eq = "partner" }
"""


def test_hook_leadscore_rulepacks(pm, tmp_path, monkeypatch, make_lead, as_of):
    # A real package on sys.path, so the pack is read through importlib.resources like a plugin's.
    package = tmp_path / "leadscore_acme_hooktest"
    (package / "rulepacks").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "rulepacks" / "acme.toml").write_text(ACME_PACK, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "leadscore_acme_hooktest", raising=False)
    from importlib.resources import files

    class AcmePlugin:
        @hookimpl
        def leadscore_rulepacks(self):
            return [RulepackSource("acme", files("leadscore_acme_hooktest") / "rulepacks" / "acme.toml")]

    pm.register(AcmePlugin(), name="leadscore-acme")
    sources = pm.get_rulepack_sources()
    assert sorted(sources) == ["acme", "firr-base"]
    assert sources["acme"][1] == "leadscore-acme"

    engine = Engine(plugins=pm, rulepacks=["acme"], as_of=as_of)
    card = engine.score_lead(make_lead(source="Partner"))
    # "Partner" -> lead.source "partner" -> channel "partner": only the acme rule matches (12 fit points).
    assert card.packs == (("firr-base", "1.0.0"), ("acme", "3.2.0"))
    assert [(c.rule_id, c.points, c.pack) for c in card.ledger] == [("acme.partner-referral", 12, "acme")]
    assert card.total == 12


SCORER_PACK = """\
[pack]
name = "phone-scoring"
version = "1.0.0"
extends = ["firr-base"]
priority = 10
scorers = ["rules", "phone-bonus"]
"""


class PhoneBonusPlugin:
    @hookimpl
    def leadscore_scorers(self):
        def fn(lead, signals, ctx):
            if lead.fields.get("phone"):
                yield ScoreLine("phone.bonus", "readiness", 6, "Left a phone number on the demo form")

        return [Scorer("phone-bonus", fn, "a bonus for leads that give a phone number")]


def test_hook_leadscore_scorers(pm, write_pack, make_lead, as_of):
    pm.register(PhoneBonusPlugin(), name="phone-bonus-plugin")
    assert sorted(pm.get_scorers()) == ["phone-bonus"]  # `rules`, the rule engine, is the core's own
    engine = Engine(plugins=pm, rulepacks=[write_pack(SCORER_PACK)], as_of=as_of)

    card = engine.score_lead(make_lead(fields={"phone": "+44 20 7946 0000"}))
    # No title, email or company: firr-base adds nothing, the scorer adds its 6 readiness points.
    [line] = card.ledger
    assert (line.rule_id, line.category, line.points, line.pack, line.kind) == (
        "phone.bonus", "readiness", 6, "scorer:phone-bonus", "rule")
    assert card.total == 6 and card.subscore_map["readiness"] == 6

    assert engine.score_lead(make_lead("L-2")).ledger == ()


def test_hook_leadscore_scorers_unused_unless_listed(pm, make_lead, as_of):
    # firr-base does not list the scorer, so registering it changes nothing.
    pm.register(PhoneBonusPlugin(), name="phone-bonus-plugin")
    engine = Engine(plugins=pm, rulepacks=["firr-base"], as_of=as_of)
    assert engine.score_lead(make_lead(fields={"phone": "+44 20 7946 0000"})).ledger == ()


CLIFF_PACK = """\
[pack]
name = "cliff-pricing"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[decay.quick]
kind = "cliff"
days = 5

[[rules]]
id = "intent.pricing"
category = "intent"
points = 22
decay = "quick"
on = "pricing_page_visit"
reason = "Looked at pricing this week"
"""


class CliffPlugin:
    @hookimpl
    def leadscore_decay_policies(self):
        def make(params):
            days = params.get("days")
            if not isinstance(days, (int, float)) or days <= 0:
                raise ValueError(f"`days` must be a positive number, not {days!r}")
            return lambda age: 1.0 if age < days else 0.5

        return [DecayPolicy("cliff", make, "full value, then half", ("days",))]


def test_hook_leadscore_decay_policies(pm, write_pack, make_lead, as_of):
    pm.register(CliffPlugin(), name="cliff-plugin")
    assert "cliff" in pm.get_decay_policies()
    engine = Engine(plugins=pm, rulepacks=[write_pack(CLIFF_PACK)], as_of=as_of)

    fresh = engine.score_lead(make_lead("L-1", activities=[("pricing_page_visit", 3)]))
    stale = engine.score_lead(make_lead("L-2", activities=[("pricing_page_visit", 10)]))
    # 3 days < 5: the full 22; 10 days: 22 * 0.5 = 11. (firr-base's half-life would give 19 and 14.)
    [f] = fresh.ledger
    [s] = stale.ledger
    assert (f.points, f.decay, f.decay_factor) == (22, "quick", 1.0)
    assert (s.points, s.decay, s.decay_factor, s.raw_points) == (11, "quick", 0.5, 22)


def test_hook_leadscore_decay_policies_unknown_kind_without_the_plugin(pm, write_pack, as_of):
    from leadscore.errors import RulepackErrors

    with pytest.raises(RulepackErrors, match=r"unknown decay policy kind 'cliff' in decay 'quick'"):
        Engine(plugins=pm, rulepacks=[write_pack(CLIFF_PACK)], as_of=as_of)


class StrategicRouter:
    @hookimpl
    def leadscore_route_lead(self, card, lead, ctx):
        if lead.company.tier == "strategic":
            return Route("page_account_executive", queue="strategic-ae", sla_hours=1, owner_hint="named AE",
                         reason=f"strategic account in band {card.band}")
        return None


def test_hook_leadscore_route_lead(pm, make_lead, as_of):
    pm.register(StrategicRouter(), name="strategic-router")
    engine = Engine(plugins=pm, rulepacks=["firr-base"], as_of=as_of)

    strategic = engine.score_lead(make_lead("L-1", company={"name": "Initech", "tier": "strategic"}))
    other = engine.score_lead(make_lead("L-2", company={"name": "Globex", "tier": "target"}))
    # Both score 0 (band early); the plugin wins for the strategic account, the default routes the other.
    assert strategic.route == Route("page_account_executive", "strategic-ae", 1, "named AE",
                                    "strategic account in band early")
    assert other.route == Route("nurture", "marketing-nurture", None, None,
                                "Too early for sales: keep in the nurture programme")


def test_hook_leadscore_route_lead_receives_context(pm, make_lead, as_of):
    seen = {}

    class Spy:
        @hookimpl
        def leadscore_route_lead(self, card, lead, ctx):
            seen.update(card=card, lead=lead, ctx=ctx)
            return None

    pm.register(Spy(), name="spy-router")
    engine = Engine(plugins=pm, rulepacks=["firr-base"], as_of=as_of)
    lead = make_lead(title="VP Marketing")
    card = engine.score_lead(lead)
    assert seen["lead"] is lead
    assert seen["card"].route is None and seen["card"].total == card.total == 30  # vp 20 + buyer 10
    assert seen["ctx"]["packs"] == ("firr-base",)
    assert seen["ctx"]["signals"]["title.seniority"] == "vp"
    assert seen["ctx"]["routing"]["engaged"].action == "accelerated_nurture"
    assert card.route.action == "accelerated_nurture"  # the spy had no opinion


def test_hook_leadscore_register_commands(pm):
    class HelloPlugin:
        @hookimpl
        def leadscore_register_commands(self, cli):
            @cli.command()
            @click.option("--name", default="world")
            def hello(name):
                """Say hello from the acme plugin."""
                click.echo(f"hello {name} from acme")

    @click.group()
    def cli():
        """The leadscore command line (a stand-in root group)."""

    pm.register(HelloPlugin(), name="hello-plugin")
    assert "hello" not in cli.commands
    pm.register_commands(cli)
    assert "hello" in cli.commands

    result = CliRunner().invoke(cli, ["hello", "--name", "dana"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello dana from acme\n"


def test_example_in_signal_extractor_docstring_runs(pm, make_lead, as_of):
    # The documented example is the first thing a plugin author copies: it must work as written.
    doc = inspect.getdoc(hookspecs.leadscore_signal_extractors) or ""
    code = textwrap.dedent(doc.split("Example::", 1)[1])
    namespace = {"hookimpl": hookimpl, "Signal": Signal, "SignalExtractor": SignalExtractor,
                 "SignalSpec": SignalSpec}
    exec(compile(code, "<docstring example>", "exec"), namespace)

    class DocExample:
        leadscore_signal_extractors = staticmethod(namespace["leadscore_signal_extractors"])

    [record] = namespace["leadscore_signal_extractors"]()
    pm.register(DocExample(), name="doc-example")
    # Registering it beside the built-ins must not clash with one of their names.
    extractor = {e.name: e for e in pm.get_signal_extractors()}[record.name]
    lead = make_lead(fields={"phone": "555"})
    assert list(extractor.fn(lead, ExtractContext(as_of))) == [Signal("crm.has_phone", True)]
