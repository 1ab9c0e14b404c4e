"""The regular expressions of `matches` conditions, run by RE2: time linear in the text whatever
the pattern, so a pattern from a plugin or another team cannot hang scoring.

RE2 (google-re2) has no backreferences and no lookaround, the features that need backtracking;
``check`` refuses them with what to write instead. A pattern must match the whole value, and
``\\d``, ``\\w``, ``\\s``, ``\\b`` are ASCII classes (as in Python with ``re.ASCII``).
"""

from __future__ import annotations

import re
from typing import Any

import re2

_OPTIONS = re2.Options()
# Errors come back as exceptions with the reason; RE2's own log line on stderr would repeat it.
_OPTIONS.log_errors = False

_INSTEAD = (
    (re.compile(r"\\[1-9]|\(\?P=|\\g<"), "RE2 has no backreferences; spell out the repeated text, or compare it "
                                         "in a second condition"),
    (re.compile(r"\(\?<?[=!]"), "RE2 has no lookahead or lookbehind; combine two conditions instead, e.g. "
                                "all = [{ signal = ..., matches = \"a.*\" }, { not = { signal = ..., matches = "
                                "\".*b.*\" } }]"),
    (re.compile(r"\\Z"), "RE2 has no \\Z; the pattern already matches the whole value, so leave it out (or use $)"),
    (re.compile(r"\(\?>|[*+?}]\+"), "RE2 has no atomic groups or possessive quantifiers; use plain groups and "
                                    "quantifiers, which never backtrack in RE2"),
)
_GENERAL = "write an RE2 regular expression (Python syntax without backreferences or lookaround); it must match " \
           "the whole value"


class RegexError(ValueError):
    """A pattern RE2 cannot compile: ``why`` is RE2's reason, ``fix`` what to write instead."""

    def __init__(self, pattern: str, why: str, fix: str) -> None:
        super().__init__(f"{why}; {fix}")
        self.pattern = pattern
        self.why = why
        self.fix = fix


class Regex:
    """A compiled `matches` pattern. ``fullmatch(text)`` returns a match or None, like re's."""

    __slots__ = ("_fullmatch", "pattern")

    def __init__(self, pattern: str) -> None:
        try:
            compiled = re2.compile(pattern, _OPTIONS)
        except re2.error as err:
            raise RegexError(pattern, _reason(err), _fix(pattern)) from None
        self.pattern = pattern
        self._fullmatch = compiled.fullmatch

    def fullmatch(self, text: str) -> Any:
        try:
            return self._fullmatch(text)
        except UnicodeEncodeError:
            # A lone surrogate (only a caller's own Lead can hold one) matches as U+FFFD.
            return self._fullmatch(text.encode("utf-8", "replace").decode("utf-8"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(("Regex", self.pattern))

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return Regex, (self.pattern,)


def _reason(err: Exception) -> str:
    reason = err.args[0] if err.args else str(err)
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return str(reason)


def _fix(pattern: str) -> str:
    for found, instead in _INSTEAD:
        if found.search(pattern):
            return instead
    return _GENERAL
