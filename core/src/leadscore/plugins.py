"""The plugin-manager façade: the only place that talks to pluggy.

The engine, the CLI and tests call typed methods here (``get_signal_extractors()``,
``get_router()``...). Nothing is loaded at import time: build a :class:`PluginManager` when needed.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs
import pluggy

from leadscore import hookspecs
from leadscore.errors import PluginError, PluginFault, describe_failure
from leadscore.model import (
    DecayPolicy,
    Lead,
    RollupStrategy,
    Route,
    RulepackSource,
    ScoreCard,
    Scorer,
    SignalExtractor,
)

ENTRY_POINT_GROUP = "leadscore"
# The rule engine is the built-in scorer: a rulepack lists it in ``scorers`` like any plugin's.
RULES_SCORER = "rules"
DISABLE_ENV = "LEADSCORE_DISABLE_PLUGINS"
LOAD_ENV = "LEADSCORE_LOAD_PLUGINS"
TRACE_ENV = "LEADSCORE_TRACE_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "leadscore.default_plugins.extract.email",
    "leadscore.default_plugins.extract.title",
    "leadscore.default_plugins.extract.firmographics",
    "leadscore.default_plugins.extract.activities",
    "leadscore.default_plugins.extract.crm",
    "leadscore.default_plugins.compose.rulepacks",
    "leadscore.default_plugins.decay.curves",
    "leadscore.default_plugins.aggregate.accounts",
    "leadscore.default_plugins.route.bands",
)

T = TypeVar("T")


@attrs.frozen
class PluginInfo:
    """A registered plugin as ``leadscore plugins`` shows it."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


def _env_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def core_version() -> str:
    try:
        return importlib.metadata.version("leadscore")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


class PluginManager:
    """Registers the built-ins and the installed plugins, and serves their registries.

    :param entry_points: load plugins from the ``leadscore`` entry-point group.
    :param builtins: register ``DEFAULT_PLUGINS`` (the core's own extractors, decay, router...).
    :param disabled: plugin names to block (entry-point or distribution names, or a built-in's
        module name); defaults to ``$LEADSCORE_DISABLE_PLUGINS`` (comma separated).
    :param allow: if not None, only these entry-point plugins load; defaults to
        ``$LEADSCORE_LOAD_PLUGINS`` (comma separated; empty means none).
    :param trace: write every hook call and what each plugin returned to stderr; defaults to
        ``$LEADSCORE_TRACE_PLUGINS`` being set to anything but empty or ``0``.

    ``load_errors`` lists the problems found while loading (a plugin that failed to import, a
    name in the disable or allow list that matches no plugin); the CLI prints them as warnings.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        builtins: bool = True,
        disabled: Iterable[str] | None = None,
        allow: Iterable[str] | None = None,
        trace: bool | None = None,
    ) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, tuple[str, str, bool]] = {}
        self._origins: dict[tuple[str, str], str] = {}
        self.load_errors: list[str] = []
        self.trace = trace if trace is not None else os.environ.get(TRACE_ENV, "") not in ("", "0")
        if self.trace:
            self._pm.trace.root.setwriter(lambda text: sys.stderr.write(f"leadscore: trace: {text}"))
            self._pm.enable_tracing()
        env_disabled = _env_list(os.environ.get(DISABLE_ENV))
        self.disabled = set(disabled if disabled is not None else env_disabled or ())
        allow_list = allow if allow is not None else _env_list(os.environ.get(LOAD_ENV))
        self.allow = None if allow_list is None else set(allow_list)
        if builtins:
            for module_name in DEFAULT_PLUGINS:
                if module_name in self.disabled:
                    continue
                module = importlib.import_module(module_name)
                self._register(module, module_name, "leadscore", core_version(), builtin=True)
        known = set(DEFAULT_PLUGINS) if builtins else set()
        if entry_points:
            known |= self._load_entry_points()
        self.check_pending()
        self._warn_unknown(self.disabled, DISABLE_ENV, known)
        if self.allow:
            self._warn_unknown(self.allow, LOAD_ENV, known)

    def _warn_unknown(self, names: Iterable[str], setting: str, known: set[str]) -> None:
        """A misspelt name in the disable or allow list would silently do nothing: say so."""
        for name in sorted(set(names) - known):
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.load_errors.append(f"{setting} names {name!r}, which is no installed plugin; {hint}"
                                    f"`leadscore plugins --all` lists them")

    # --- registration -------------------------------------------------------------------

    def _register(self, plugin: object, name: str, dist: str, version: str, builtin: bool) -> None:
        self._pm.register(plugin, name=name)
        self._infos[name] = (dist, version, builtin)

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (module, class instance) by name; returns the name used."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self.disabled:
            return name
        self._register(plugin, name, name, "", builtin=False)
        try:
            self.check_pending()
        except PluginError:
            self.unregister(name)
            raise
        return name

    def unregister(self, name: str) -> None:
        self._pm.unregister(name=name)
        self._infos.pop(name, None)

    def check_pending(self) -> None:
        """Fail on hook implementations that match no spec (a misspelled hook name)."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as err:
            name = self._pm.get_name(err.plugin) if err.plugin is not None else None
            raise PluginError(
                f"plugin {name!r}" if name else "plugin",
                f"implements an unknown hook: {err}",
                "hook names start with leadscore_; see docs/hooks.md for the list",
            ) from err

    def _load_entry_points(self) -> set[str]:
        """Load the installed plugins; return the names they go by (entry point and distribution)."""
        names: set[str] = set()
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist
            dist_name = dist.name if dist is not None else ep.name
            version = dist.version if dist is not None else ""
            names.update((ep.name, dist_name))
            if ep.name in self.disabled or dist_name in self.disabled:
                continue
            if self.allow is not None and ep.name not in self.allow and dist_name not in self.allow:
                continue
            if self._pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
                self._register(plugin, ep.name, dist_name, version, builtin=False)
                self.check_pending()
            # A broken plugin must not stop the others, nor may one that calls sys.exit() on import.
            except (Exception, SystemExit) as err:
                self.load_errors.append(
                    f"plugin {ep.name} ({' '.join(filter(None, (dist_name, version)))}) failed to load: "
                    f"{describe_failure(err)}; "
                    f"check it is compatible with leadscore {core_version()}, or disable it with "
                    f"{DISABLE_ENV}={ep.name}"
                )
                if self._pm.get_plugin(ep.name) is not None:
                    self._pm.unregister(name=ep.name)
        return names

    # --- introspection ------------------------------------------------------------------

    def plugins(self, include_builtins: bool = False) -> list[PluginInfo]:
        out = []
        for name, plugin in self._pm.list_name_plugin():
            dist, version, builtin = self._infos.get(name, (name, "", False))
            if builtin and not include_builtins:
                continue
            hooks = tuple(sorted(h.name for h in self._pm.get_hookcallers(plugin) or ()))
            out.append(PluginInfo(name, dist, version, hooks, builtin))
        return sorted(out, key=lambda p: (p.builtin, p.name))

    def per_lead_only(self, name: str) -> tuple[str, ...]:
        """The hooks of plugin ``name`` whose results the columnar engine can only use one lead at a time.

        A signal extractor without a ``columnar`` form, a scorer, a decay policy without a ``columnar``
        form (the built-in kinds have one), or a router that does not declare the lead fields it reads
        (``reads_lead``) makes the columnar engine score per lead, the python way.
        """
        plugin = self._pm.get_plugin(name)
        if plugin is None:
            return ()
        found = []
        for caller in self._pm.get_hookcallers(plugin) or ():
            impl = next((i for i in caller.get_hookimpls() if i.plugin is plugin), None)
            if impl is None:
                continue
            hook = caller.name
            if hook == "leadscore_signal_extractors":
                if any(getattr(r, "columnar", None) is None and r.name != "account" for r in impl.function() or ()):
                    found.append(hook)
            elif hook == "leadscore_scorers":
                if any(r.name != "rules" for r in impl.function() or ()):
                    found.append(hook)
            elif hook == "leadscore_decay_policies":
                if any(getattr(r, "columnar", None) is None for r in impl.function() or ()):
                    found.append(hook)
            elif hook == "leadscore_route_lead":
                if getattr(impl.function, "reads_lead", None) is None:
                    found.append(hook)
        return tuple(sorted(found))

    def hook_names(self) -> list[str]:
        return sorted(name for name in dir(hookspecs) if name.startswith("leadscore_"))

    # --- registries ---------------------------------------------------------------------

    def _collect(self, hook_name: str, kind: str, record_type: type) -> list[tuple[Any, str]]:
        """Call a collect-all registry hook plugin by plugin, keeping who returned what.

        A hook that raises, or returns something other than ``record_type`` records, stops the
        set-up with a PluginError naming the plugin and the hook.
        """
        caller = getattr(self._pm.hook, hook_name)
        found: dict[str, tuple[Any, str]] = {}
        for impl in caller.get_hookimpls():
            _refuse_wrapper(impl, hook_name)
            fix = f"fix the plugin, or switch it off with {DISABLE_ENV}={impl.plugin_name}"
            try:
                records = list(impl.function() or ())
            except (Exception, SystemExit) as err:
                raise PluginError(f"plugin {impl.plugin_name!r}", f"{hook_name} failed: {describe_failure(err)}",
                                  fix) from err
            for record in records:
                if not isinstance(record, record_type):
                    raise PluginError(f"plugin {impl.plugin_name!r}",
                                      f"{hook_name} returned {_shown(record)}, not {record_type.__name__} records",
                                      fix)
            if self.trace:
                shown = ", ".join(getattr(r, "name", repr(r)) for r in records) or "nothing"
                sys.stderr.write(f"leadscore: trace: {hook_name}: {impl.plugin_name} -> {shown}\n")
            for record in records:
                seen = found.get(record.name)
                if seen is not None:
                    raise PluginError(
                        f"{kind} {record.name!r}",
                        f"is provided by both {seen[1]!r} and {impl.plugin_name!r}",
                        f"rename one of them, or disable a plugin with {DISABLE_ENV}",
                    )
                found[record.name] = (record, impl.plugin_name)
                self._origins[(kind, record.name)] = impl.plugin_name
        return [found[name] for name in sorted(found)]

    def plugin_of(self, kind: str, name: str) -> str:
        """The plugin that registered ``name`` (a signal extractor, a scorer...), once collected."""
        return self._origins.get((kind, name), "?")

    def get_signal_extractors(self) -> tuple[SignalExtractor, ...]:
        return tuple(r for r, _ in self._collect("leadscore_signal_extractors", "signal extractor", SignalExtractor))

    def get_rulepack_sources(self) -> dict[str, tuple[RulepackSource, str]]:
        """Rulepack name -> (source, plugin name)."""
        return {r.name: (r, plugin) for r, plugin in self._collect("leadscore_rulepacks", "rulepack", RulepackSource)}

    def get_scorers(self) -> dict[str, Scorer]:
        """Scorer name -> Scorer. ``rules`` (the rule engine) is the core's own and not listed."""
        found = {}
        for record, plugin in self._collect("leadscore_scorers", "scorer", Scorer):
            if record.name == RULES_SCORER:
                raise PluginError(f"scorer {record.name!r}", f"from {plugin!r} takes the name of the core's rule engine",
                                  "give the plugin's scorer another name")
            found[record.name] = record
        return found

    def get_decay_policies(self) -> dict[str, DecayPolicy]:
        return {r.name: r for r, _ in self._collect("leadscore_decay_policies", "decay policy", DecayPolicy)}

    def get_rollup_strategies(self) -> dict[str, RollupStrategy]:
        return {r.name: r for r, _ in self._collect("leadscore_rollup_strategies", "roll-up strategy", RollupStrategy)}

    def routers_by_plugin(self) -> list[tuple[str, Callable[..., Any]]]:
        """(plugin name, function) of every ``leadscore_route_lead`` implementation, in call order."""
        return [(impl.plugin_name, impl.function)
                for impl in reversed(self._pm.hook.leadscore_route_lead.get_hookimpls())]

    def get_router(self) -> Callable[[ScoreCard, Lead, dict[str, Any]], Route | None]:
        """A plain function with ``leadscore_route_lead``'s firstresult semantics.

        Built once, so routing a lead costs no pluggy dispatch. The order is pluggy's own
        (tryfirst first, trylast last, otherwise last registered first).
        """
        impls = list(reversed(self._pm.hook.leadscore_route_lead.get_hookimpls()))
        for impl in impls:
            _refuse_wrapper(impl, "leadscore_route_lead")
        names = [impl.plugin_name for impl in impls]
        if self.trace:
            impls = [_TracedImpl(impl) for impl in impls]
        calls = [(impl.function, tuple(impl.argnames)) for impl in impls]
        if all(argnames == ("card", "lead", "ctx") for _, argnames in calls):
            functions = [fn for fn, _ in calls]

            def route(card: ScoreCard, lead: Lead, ctx: dict[str, Any]) -> Route | None:
                for index, fn in enumerate(functions):  # every router takes all three arguments
                    try:
                        result = fn(card, lead, ctx)
                    except Exception as err:
                        raise _router_fault(names[index], f"raised {describe_failure(err)}") from err
                    if result is not None:
                        if not isinstance(result, Route):
                            raise _router_fault(names[index], f"returned {_shown(result)}, not a Route or None")
                        return result
                return None

            return route

        def route_by_name(card: ScoreCard, lead: Lead, ctx: dict[str, Any]) -> Route | None:
            args = {"card": card, "lead": lead, "ctx": ctx}
            for index, (fn, argnames) in enumerate(calls):
                try:
                    result = fn(**{n: args[n] for n in argnames})
                except Exception as err:
                    raise _router_fault(names[index], f"raised {describe_failure(err)}") from err
                if result is not None:
                    if not isinstance(result, Route):
                        raise _router_fault(names[index], f"returned {_shown(result)}, not a Route or None")
                    return result
            return None

        return route_by_name

    def router_functions(self) -> list[Callable[..., Route | None]]:
        """The ``leadscore_route_lead`` implementations in call order (see :meth:`get_router`).

        A function may carry a ``columnar`` attribute: the same router for the columnar engine.
        """
        return [impl.function for impl in reversed(self._pm.hook.leadscore_route_lead.get_hookimpls())]

    def register_commands(self, cli: Any) -> list[str]:
        """Let each plugin add its commands; a plugin whose hook fails is skipped, and the
        returned lines (for the command to print as warnings) say which and why."""
        problems = []
        for impl in reversed(self._pm.hook.leadscore_register_commands.get_hookimpls()):
            try:
                impl.function(cli=cli)
            except (Exception, SystemExit) as err:
                problems.append(f"plugin {impl.plugin_name!r} (leadscore_register_commands) failed: "
                                f"{describe_failure(err)}; its commands are missing; fix the plugin, or switch it "
                                f"off with {DISABLE_ENV}={impl.plugin_name}")
        return problems


def _router_fault(plugin: str, what: str) -> PluginFault:
    return PluginFault(plugin, "leadscore_route_lead", what)


def _shown(value: Any) -> str:
    """A wrong return value as people read it: its type and a short repr."""
    try:
        text = repr(value)
    except Exception:
        text = "?"
    text = " ".join(text.split())
    text = text if len(text) <= 60 else f"{text[:57]}..."
    return f"{type(value).__name__} {text}"


def _refuse_wrapper(impl: Any, hook_name: str) -> None:
    """Registry hooks and the router are called plugin by plugin, so a wrapper has nothing to wrap."""
    if impl.wrapper or impl.hookwrapper:
        raise PluginError(f"plugin {impl.plugin_name!r}",
                          f"marks its {hook_name} implementation as a hook wrapper, which leadscore does not run",
                          "remove wrapper=True / hookwrapper=True from its @hookimpl and return the records (or "
                          "the Route) directly")


class _TracedImpl:
    """A router implementation that reports each call and its answer on stderr."""

    def __init__(self, impl: Any) -> None:
        self.argnames = impl.argnames
        plugin, fn = impl.plugin_name, impl.function

        def function(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            card = args[0] if args else kwargs.get("card")
            lead_id = getattr(card, "lead_id", "?")
            sys.stderr.write(f"leadscore: trace: leadscore_route_lead({lead_id}): {plugin} -> {result!r}\n")
            return result

        self.function = function
