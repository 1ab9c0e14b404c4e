"""Errors are part of the interface: each one reads `where: what is wrong; what would be right`."""

from __future__ import annotations


class LeadscoreError(Exception):
    """Base class. ``str(err)`` is the one line a user sees."""

    def __init__(self, where: str, what: str, fix: str = "") -> None:
        self.where = where
        self.what = what
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}; {self.fix}" if self.fix else text


class RulepackError(LeadscoreError):
    """One problem in a rulepack file."""


class RulepackErrors(LeadscoreError):
    """Every problem found while loading one or more rulepacks (validation does not stop at the first)."""

    def __init__(self, errors: list[RulepackError]) -> None:
        self.errors = errors
        super().__init__("", "\n".join(e.line() for e in errors))


class InputError(LeadscoreError):
    """Bad input that stops a run (a missing file, an unknown CSV column, an empty file)."""


class PluginError(LeadscoreError):
    """A plugin conflict or an invalid registration (duplicate names, unknown hooks)."""


class ConfigurationError(LeadscoreError):
    """A usage or set-up problem: an unknown backend, a rulepack that is not installed."""


class PluginFault(RuntimeError):
    """A plugin failed on one lead (raised, or returned the wrong kind of value): that lead is
    rejected with this message, which names the plugin and the hook; the other leads go on."""

    def __init__(self, plugin: str, hook: str, what: str) -> None:
        self.plugin = plugin
        self.hook = hook
        super().__init__(f"plugin {plugin!r} ({hook}): {what}")


def describe_failure(err: BaseException) -> str:
    """An exception as ``Type: message`` on one line, shortened."""
    text = " ".join(str(err).split())
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= 200 else f"{text[:197]}..."


def first_line(err: BaseException) -> str:
    """An exception's message's first line, or its type's name when it has none."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
