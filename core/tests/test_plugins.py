"""The plugin-manager façade: conflicts named, typos rejected, plugins switched off, broken ones reported."""

from __future__ import annotations

import importlib.metadata
import random
import sys

import pytest

from leadscore import PluginManager, hookimpl
from leadscore.errors import PluginError
from leadscore.model import DecayPolicy, Route, Signal, SignalExtractor, SignalSpec
from leadscore.plugins import DEFAULT_PLUGINS, DISABLE_ENV, ENTRY_POINT_GROUP, LOAD_ENV


def _extractor_plugin(*names: str):
    """A plugin class providing signal extractors with the given names (each emits one signal)."""

    class Plugin:
        @hookimpl
        def leadscore_signal_extractors(self):
            return [SignalExtractor(n, lambda lead, ctx, n=n: [Signal(f"{n}.seen", True)],
                                    (SignalSpec(f"{n}.seen", "bool"),)) for n in names]

    return Plugin()


def _decay_plugin(*names: str):
    class Plugin:
        @hookimpl
        def leadscore_decay_policies(self):
            return [DecayPolicy(n, lambda params: (lambda age: 1.0)) for n in names]

    return Plugin()


@pytest.fixture
def bare() -> PluginManager:
    return PluginManager(builtins=False, entry_points=False)


# --- duplicate names -----------------------------------------------------------------------------


def test_duplicate_extractor_names_name_both_plugins(bare):
    bare.register(_extractor_plugin("clearbit"), name="leadscore-enrich-a")
    bare.register(_extractor_plugin("clearbit"), name="leadscore-enrich-b")
    with pytest.raises(PluginError) as info:
        bare.get_signal_extractors()
    message = str(info.value)
    assert "'clearbit'" in message
    assert "'leadscore-enrich-a'" in message and "'leadscore-enrich-b'" in message
    assert DISABLE_ENV in message  # says what would be right


def test_duplicate_of_a_builtin_names_the_builtin_module(pm):
    pm.register(_decay_plugin("half_life"), name="leadscore-fancy-decay")
    with pytest.raises(PluginError) as info:
        pm.get_decay_policies()
    # The first registered source is named first (the built-ins register before any plugin).
    assert str(info.value) == (
        "decay policy 'half_life': is provided by both 'leadscore.default_plugins.decay.curves' and "
        "'leadscore-fancy-decay'; rename one of them, or disable a plugin with LEADSCORE_DISABLE_PLUGINS"
    )


def test_duplicate_within_one_plugin_is_an_error_too(bare):
    bare.register(_extractor_plugin("crm-x", "crm-x"), name="leadscore-crm")
    with pytest.raises(PluginError, match="'crm-x'"):
        bare.get_signal_extractors()


# --- misspelled hooks ----------------------------------------------------------------------------


class TypoPlugin:
    @hookimpl
    def leadscore_signal_extractor(self):  # missing the final "s"
        return []


def test_misspelled_hook_is_rejected_at_register(pm):
    with pytest.raises(PluginError) as info:
        pm.register(TypoPlugin(), name="leadscore-typo")
    message = str(info.value)
    assert "leadscore_signal_extractor" in message
    assert "leadscore-typo" in message, "the error must name the plugin as it was registered"
    assert "hook names start with leadscore_" in message


def test_rejected_plugin_does_not_stay_registered(pm):
    with pytest.raises(PluginError):
        pm.register(TypoPlugin(), name="leadscore-typo")
    # The manager stays usable: the typo plugin is gone and a good plugin registers cleanly.
    assert "leadscore-typo" not in [p.name for p in pm.plugins(include_builtins=True)]
    pm.register(_extractor_plugin("crm-phone"), name="leadscore-phone")
    assert "crm-phone" in [e.name for e in pm.get_signal_extractors()]


def test_correctly_spelled_hook_registers(pm):
    name = pm.register(_extractor_plugin("crm-phone"), name="leadscore-phone")
    assert name == "leadscore-phone"
    info = {p.name: p for p in pm.plugins()}["leadscore-phone"]
    assert info.hooks == ("leadscore_signal_extractors",) and not info.builtin


# --- switching plugins off -----------------------------------------------------------------------


def test_disabled_blocks_a_builtin_by_module_name():
    pm = PluginManager(entry_points=False, disabled=["leadscore.default_plugins.extract.title"])
    names = {e.name for e in pm.get_signal_extractors()}
    assert {e.name for e in PluginManager(entry_points=False).get_signal_extractors()} - names == {"title"}
    assert "leadscore.default_plugins.extract.title" not in [p.name for p in pm.plugins(include_builtins=True)]


def test_disable_env_blocks_builtins(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "leadscore.default_plugins.extract.email, leadscore.default_plugins.route.bands")
    pm = PluginManager(entry_points=False)
    assert "email" not in [e.name for e in pm.get_signal_extractors()]
    assert "leadscore.default_plugins.route.bands" not in [p.name for p in pm.plugins(include_builtins=True)]
    assert pm.disabled == {"leadscore.default_plugins.extract.email", "leadscore.default_plugins.route.bands"}


def test_explicit_disabled_overrides_the_env(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "leadscore.default_plugins.extract.email")
    pm = PluginManager(entry_points=False, disabled=[])
    assert "email" in [e.name for e in pm.get_signal_extractors()]


def test_disabled_name_is_skipped_by_register(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "leadscore-phone")
    pm = PluginManager(entry_points=False)
    pm.register(_extractor_plugin("crm-phone"), name="leadscore-phone")
    assert "crm-phone" not in [e.name for e in pm.get_signal_extractors()]


# --- entry points --------------------------------------------------------------------------------


class FakeDist:
    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version


class FakeEntryPoint:
    """What _load_entry_points reads from an importlib.metadata.EntryPoint: name, dist and load()."""

    def __init__(self, name: str, load, dist: FakeDist | None) -> None:
        self.name = name
        self.group = ENTRY_POINT_GROUP
        self.dist = dist
        self._load = load

    def load(self):
        return self._load()


class GoodPlugin:
    @hookimpl
    def leadscore_decay_policies(self):
        return [DecayPolicy("cliff", lambda params: (lambda age: 1.0 if age < 7 else 0.0))]


class OtherGoodPlugin:
    @hookimpl
    def leadscore_decay_policies(self):
        return [DecayPolicy("sigmoid", lambda params: (lambda age: 1.0))]


def _broken():
    raise ImportError("cannot import name 'hookimpl' from 'leadscore.compat'")


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Install fake entry points; returns the list so a test can fill it."""
    points: list[FakeEntryPoint] = []

    def entry_points(*, group=None, **kwargs):
        assert group == ENTRY_POINT_GROUP, group
        return [ep for ep in points if ep.group == group]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    monkeypatch.delenv(LOAD_ENV, raising=False)
    return points


def test_broken_entry_point_is_reported_and_the_others_load(fake_entry_points):
    fake_entry_points.extend([
        FakeEntryPoint("zeta", lambda: OtherGoodPlugin(), FakeDist("leadscore-zeta", "1.0.0")),
        FakeEntryPoint("broken", _broken, FakeDist("leadscore-broken", "0.3.1")),
        FakeEntryPoint("alpha", lambda: GoodPlugin(), FakeDist("leadscore-alpha", "2.4.0")),
    ])
    pm = PluginManager(builtins=False)

    [error] = pm.load_errors
    assert error.startswith(
        "plugin broken (leadscore-broken 0.3.1) failed to load: ImportError: cannot import name 'hookimpl' "
        "from 'leadscore.compat'; ")
    assert f"{DISABLE_ENV}=broken" in error
    assert sorted(pm.get_decay_policies()) == ["cliff", "sigmoid"]
    plugins = {p.name: p for p in pm.plugins()}
    assert sorted(plugins) == ["alpha", "zeta"]
    assert (plugins["alpha"].distribution, plugins["alpha"].version) == ("leadscore-alpha", "2.4.0")


def test_entry_point_disabled_by_distribution_name(fake_entry_points, monkeypatch):
    fake_entry_points.extend([
        FakeEntryPoint("alpha", lambda: GoodPlugin(), FakeDist("leadscore-alpha", "2.4.0")),
        FakeEntryPoint("zeta", lambda: OtherGoodPlugin(), FakeDist("leadscore-zeta", "1.0.0")),
    ])
    monkeypatch.setenv(DISABLE_ENV, "leadscore-zeta")
    pm = PluginManager(builtins=False)
    assert sorted(pm.get_decay_policies()) == ["cliff"]
    assert pm.load_errors == []


def test_disabled_entry_point_is_never_imported(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("broken", _broken, FakeDist("leadscore-broken", "0.3.1")))
    pm = PluginManager(builtins=False, disabled=["broken"])
    assert pm.load_errors == []


def test_allow_list_loads_only_the_named_plugins(fake_entry_points):
    fake_entry_points.extend([
        FakeEntryPoint("alpha", lambda: GoodPlugin(), FakeDist("leadscore-alpha", "2.4.0")),
        FakeEntryPoint("zeta", lambda: OtherGoodPlugin(), FakeDist("leadscore-zeta", "1.0.0")),
    ])
    assert sorted(PluginManager(builtins=False, allow=["zeta"]).get_decay_policies()) == ["sigmoid"]


def test_empty_load_env_loads_no_entry_points(fake_entry_points, monkeypatch):
    fake_entry_points.append(FakeEntryPoint("alpha", lambda: GoodPlugin(), FakeDist("leadscore-alpha", "2.4.0")))
    monkeypatch.setenv(LOAD_ENV, "")
    assert PluginManager(builtins=False).get_decay_policies() == {}


def test_real_entry_points_one_missing_module(fake_entry_points, tmp_path, monkeypatch):
    # importlib.metadata.EntryPoint itself, importing real modules (one of which does not exist).
    (tmp_path / "leadscore_eptest_good.py").write_text(
        "from leadscore import hookimpl\n"
        "from leadscore.model import DecayPolicy\n\n"
        "@hookimpl\n"
        "def leadscore_decay_policies():\n"
        "    return [DecayPolicy('cliff', lambda params: (lambda age: 1.0 if age < 7 else 0.0))]\n",
        encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "leadscore_eptest_good", raising=False)
    fake_entry_points.extend([
        importlib.metadata.EntryPoint("good", "leadscore_eptest_good", ENTRY_POINT_GROUP),
        importlib.metadata.EntryPoint("missing", "leadscore_eptest_not_installed", ENTRY_POINT_GROUP),
        importlib.metadata.EntryPoint("elsewhere", "leadscore_eptest_good", "pytest11"),  # another group
    ])
    pm = PluginManager(builtins=False)
    [error] = pm.load_errors
    assert error.startswith("plugin missing (")
    assert "failed to load: ModuleNotFoundError: No module named 'leadscore_eptest_not_installed'" in error
    assert list(pm.get_decay_policies()) == ["cliff"]
    assert [p.name for p in pm.plugins()] == ["good"]


# --- ordering ------------------------------------------------------------------------------------


def test_registries_are_sorted_by_name_whatever_the_registration_order(bare):
    bare.register(_extractor_plugin("zoominfo", "apollo"), name="p1")
    bare.register(_extractor_plugin("hubspot"), name="p2")
    bare.register(_extractor_plugin("clearbit"), name="p3")
    assert [e.name for e in bare.get_signal_extractors()] == ["apollo", "clearbit", "hubspot", "zoominfo"]

    other = PluginManager(builtins=False, entry_points=False)
    other.register(_extractor_plugin("clearbit"), name="p3")
    other.register(_extractor_plugin("hubspot"), name="p2")
    other.register(_extractor_plugin("zoominfo", "apollo"), name="p1")
    assert [e.name for e in other.get_signal_extractors()] == [e.name for e in bare.get_signal_extractors()]


def test_builtins_registered_in_any_order_give_the_same_registries():
    reference = PluginManager(entry_points=False)
    modules = list(DEFAULT_PLUGINS)
    random.Random(20261123).shuffle(modules)
    shuffled = PluginManager(builtins=False, entry_points=False)
    for module_name in modules:
        shuffled.register(importlib.import_module(module_name), name=module_name)
    assert [e.name for e in shuffled.get_signal_extractors()] == [e.name for e in reference.get_signal_extractors()]
    assert list(shuffled.get_decay_policies()) == list(reference.get_decay_policies())
    assert list(shuffled.get_scorers()) == list(reference.get_scorers())
    assert list(shuffled.get_rulepack_sources()) == list(reference.get_rulepack_sources())


# --- routing order -------------------------------------------------------------------------------


class _Card:
    band = "mql"


def _router(action: str | None, **marker):
    class Router:
        @hookimpl(**marker)
        def leadscore_route_lead(self, card, lead, ctx):
            return Route(action) if action else None

    return Router()


ROUTING = {"routing": {}}


def test_default_router_is_trylast_even_when_registered_after_a_plugin(bare):
    import leadscore.default_plugins.route.bands as default_routing
    bare.register(_router("call_now"), name="eager-router")
    bare.register(default_routing, name="leadscore.default_plugins.route.bands")  # registered last
    ctx = {"routing": {"mql": Route("sdr_follow_up", "sdr", 24)}}
    assert bare.get_router()(_Card(), None, ctx) == Route("call_now")


def test_default_router_answers_when_plugins_have_no_opinion(pm):
    pm.register(_router(None), name="silent-router")
    ctx = {"routing": {"mql": Route("sdr_follow_up", "sdr", 24, None, "")}}
    # No reason in the table: the default router explains the route by the band.
    assert pm.get_router()(_Card(), None, ctx) == Route("sdr_follow_up", "sdr", 24, None, "band mql")


def test_router_order_follows_pluggy(pm):
    pm.register(_router("first_registered"), name="r1")
    pm.register(_router("registered_later"), name="r2")
    pm.register(_router("tryfirst", tryfirst=True), name="r0")
    assert pm.get_router()(_Card(), None, ROUTING) == Route("tryfirst")
    pm.unregister("r0")
    # Without markers the last registered is called first (pluggy's LIFO order).
    assert pm.get_router()(_Card(), None, ROUTING) == Route("registered_later")


def test_no_router_with_an_opinion_gives_none(bare):
    bare.register(_router(None), name="silent-router")
    assert bare.get_router()(_Card(), None, ROUTING) is None


def test_router_may_take_fewer_arguments(pm):
    class BandOnly:
        @hookimpl
        def leadscore_route_lead(self, card):
            return Route(f"look_at_{card.band}")

    pm.register(BandOnly(), name="band-only")
    assert pm.get_router()(_Card(), None, ROUTING) == Route("look_at_mql")


# --- what the façade refuses or reports ------------------------------------------------------------


def test_a_misspelt_name_in_the_disable_list_is_reported_with_the_closest_plugin(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "leadscore.default_plugins.extract.emial")
    pm = PluginManager(entry_points=False)
    assert "email" in [e.name for e in pm.get_signal_extractors()]  # nothing was switched off...
    [problem] = pm.load_errors  # ...and the user hears why
    assert problem == (f"{DISABLE_ENV} names 'leadscore.default_plugins.extract.emial', which is no installed plugin; "
                       "did you mean 'leadscore.default_plugins.extract.email'? `leadscore plugins --all` lists them")


def test_a_known_name_in_the_disable_list_is_not_reported(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "leadscore.default_plugins.extract.email")
    assert PluginManager(entry_points=False).load_errors == []


@pytest.mark.parametrize("marker", [{"wrapper": True}, {"hookwrapper": True}])
def test_a_wrapper_on_a_registry_hook_is_refused_naming_plugin_and_hook(bare, marker):
    class Wrapping:
        @hookimpl(**marker)
        def leadscore_decay_policies(self):
            result = yield
            return result

    bare.register(Wrapping(), name="leadscore-wrapping")
    with pytest.raises(PluginError) as info:
        bare.get_decay_policies()
    assert str(info.value) == (
        "plugin 'leadscore-wrapping': marks its leadscore_decay_policies implementation as a hook wrapper, which "
        "leadscore does not run; remove wrapper=True / hookwrapper=True from its @hookimpl and return the records "
        "(or the Route) directly")


def test_a_wrapper_on_the_router_is_refused(bare):
    class Wrapping:
        @hookimpl(wrapper=True)
        def leadscore_route_lead(self, card, lead, ctx):
            return (yield)

    bare.register(Wrapping(), name="leadscore-wrapping")
    with pytest.raises(PluginError, match="leadscore_route_lead implementation as a hook wrapper"):
        bare.get_router()


def test_a_plugin_scorer_may_not_take_the_rule_engines_name(bare):
    from leadscore.model import Scorer

    class Rules:
        @hookimpl
        def leadscore_scorers(self):
            return [Scorer("rules", lambda lead, signals, ctx: ())]

    bare.register(Rules(), name="leadscore-rules")
    with pytest.raises(PluginError, match="scorer 'rules': from 'leadscore-rules' takes the name of the core's rule "
                                          "engine; give the plugin's scorer another name"):
        bare.get_scorers()


def test_tracing_reports_what_each_plugin_returned_and_each_routing_decision(capsys):
    pm = PluginManager(entry_points=False, trace=True)
    pm.register(_router("call_now"), name="eager-router")
    pm.get_decay_policies()
    pm.get_router()(_Card(), None, ROUTING)
    err = capsys.readouterr().err
    assert ("leadscore: trace: leadscore_decay_policies: leadscore.default_plugins.decay.curves -> "
            "none, step, linear, half_life, window\n") in err
    assert "leadscore: trace: leadscore_route_lead(?): eager-router -> Route(action='call_now'" in err  # _Card has no id


def test_tracing_is_off_unless_asked(monkeypatch, capsys):
    monkeypatch.delenv("LEADSCORE_TRACE_PLUGINS", raising=False)
    PluginManager(entry_points=False).get_decay_policies()
    monkeypatch.setenv("LEADSCORE_TRACE_PLUGINS", "1")
    PluginManager(entry_points=False).get_decay_policies()
    assert capsys.readouterr().err.count("leadscore: trace: leadscore_decay_policies") == 1


# --- plugin faults: one line naming the plugin and the hook (issue 12) ---------------------------

from leadscore import Engine  # noqa: E402
from leadscore.errors import PluginFault  # noqa: E402
from leadscore.model import Lead, Rejection, ScoreCard  # noqa: E402


class RaisingRegistry:
    @hookimpl
    def leadscore_decay_policies(self):
        raise KeyError("missing config")


class WrongRecords:
    @hookimpl
    def leadscore_decay_policies(self):
        return ["cliff"]


class ExitingRegistry:
    @hookimpl
    def leadscore_signal_extractors(self):
        raise SystemExit(3)


@pytest.mark.parametrize(("plugin", "hook", "what"), [
    (RaisingRegistry(), "leadscore_decay_policies", "leadscore_decay_policies failed: KeyError: 'missing config'"),
    (WrongRecords(), "leadscore_decay_policies", "leadscore_decay_policies returned str 'cliff', not DecayPolicy "
                                                 "records"),
    (ExitingRegistry(), "leadscore_signal_extractors", "leadscore_signal_extractors failed: SystemExit: 3"),
])
def test_a_failing_registry_hook_is_one_line_naming_the_plugin(plugin, hook, what):
    pm = PluginManager(entry_points=False)
    pm.register(plugin, name="acme-enrich")
    with pytest.raises(PluginError) as info:
        Engine(plugins=pm, rulepacks=["firr-base"])
    assert str(info.value) == (f"plugin 'acme-enrich': {what}; fix the plugin, or switch it off with "
                               f"LEADSCORE_DISABLE_PLUGINS=acme-enrich")


def _score_one(pm: PluginManager) -> ScoreCard | Rejection:
    with Engine(plugins=pm, rulepacks=["firr-base"]) as engine:
        return list(engine.score([Lead("L-1", title="VP Sales"), Lead("L-2")]))


class StringRouter:
    @hookimpl(tryfirst=True)
    def leadscore_route_lead(self, card, lead, ctx):
        return "sdr_call" if lead.id == "L-1" else None


class RaisingRouter:
    @hookimpl(tryfirst=True)
    def leadscore_route_lead(self, card, lead):
        if lead.id == "L-1":
            raise ValueError("no owner for this territory")
        return None


@pytest.mark.parametrize(("plugin", "what"), [
    (StringRouter(), "returned str 'sdr_call', not a Route or None"),
    (RaisingRouter(), "raised ValueError: no owner for this territory"),
])
def test_a_router_fault_rejects_that_lead_naming_the_plugin(plugin, what):
    pm = PluginManager(entry_points=False)
    pm.register(plugin, name="acme-router")
    first, second = _score_one(pm)
    assert first == Rejection("lead L-1", f"could not be scored: plugin 'acme-router' (leadscore_route_lead): {what}",
                              "L-1")
    assert isinstance(second, ScoreCard) and second.route is not None


def _extractor(fn):
    class Plugin:
        @hookimpl
        def leadscore_signal_extractors(self):
            return [SignalExtractor("enrich", fn, (SignalSpec("enrich.seen", "bool"),))]

    return Plugin()


@pytest.mark.parametrize(("fn", "what"), [
    (lambda lead, ctx: None if lead.id == "L-1" else [], "returned None, not an iterable of Signals"),
    (lambda lead, ctx: ["enrich.seen"] if lead.id == "L-1" else [], "returned str 'enrich.seen', not a Signal"),
    (lambda lead, ctx: 1 / 0 if lead.id == "L-1" else [], "failed: ZeroDivisionError: division by zero"),
])
def test_an_extractor_fault_rejects_that_lead_naming_the_plugin(fn, what):
    pm = PluginManager(entry_points=False)
    pm.register(_extractor(fn), name="acme-enrich")
    first, second = _score_one(pm)
    assert first == Rejection("lead L-1", "could not be scored: plugin 'acme-enrich' (leadscore_signal_extractors): "
                                          f"extractor 'enrich' {what}", "L-1")
    assert isinstance(second, ScoreCard)


def test_a_plugin_calling_sys_exit_at_import_is_contained(fake_entry_points):
    def exits():
        raise SystemExit(0)

    fake_entry_points.extend([
        FakeEntryPoint("quitter", exits, FakeDist("leadscore-quitter", "0.1.0")),
        FakeEntryPoint("alpha", lambda: GoodPlugin(), FakeDist("leadscore-alpha", "2.4.0")),
    ])
    pm = PluginManager(builtins=False)
    [error] = pm.load_errors
    assert error.startswith("plugin quitter (leadscore-quitter 0.1.0) failed to load: SystemExit: 0; ")
    assert list(pm.get_decay_policies()) == ["cliff"]


def test_a_failing_command_hook_is_a_warning_and_the_others_register():
    import click

    class Broken:
        @hookimpl
        def leadscore_register_commands(self, cli):
            raise RuntimeError("needs click 9")

    class Good:
        @hookimpl
        def leadscore_register_commands(self, cli):
            cli.add_command(click.Command("hello", callback=lambda: None))

    pm = PluginManager(builtins=False, entry_points=False)
    pm.register(Broken(), name="broken-commands")
    pm.register(Good(), name="good-commands")
    group = click.Group("leadscore")
    assert pm.register_commands(group) == [
        "plugin 'broken-commands' (leadscore_register_commands) failed: RuntimeError: needs click 9; its commands "
        "are missing; fix the plugin, or switch it off with LEADSCORE_DISABLE_PLUGINS=broken-commands"]
    assert list(group.commands) == ["hello"]
    assert isinstance(PluginFault("p", "h", "w"), RuntimeError)
