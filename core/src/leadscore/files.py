"""The files a user names: rulepacks and case files read within a size limit, and outputs written
whole or not at all (a temporary file renamed into place), never over one of the run's inputs.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

# Rulepacks and case files are reviewed by people: 8 MiB holds tens of thousands of rules. The
# limit keeps `-r /dev/zero` or a mistyped data file from being read into memory whole.
MAX_TEXT_FILE_BYTES = 8 * 1024 * 1024

ErrorFactory = Callable[[str, str, str], Exception]


def read_text_file(path: str | os.PathLike[str], what: str, error: ErrorFactory,
                   limit: int = MAX_TEXT_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes.

    ``what`` names the file in messages ("rulepack", "case file"); every problem (missing, a
    directory or a device, too large, unreadable, not UTF-8) raises ``error(where, what, fix)``.
    """
    where = os.fspath(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(where, f"{what} not found", "check the path") from None
    except OSError as err:
        raise error(where, f"cannot read the {what}: {err.strerror}", "check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(where, "is a directory", f"pass the path of a {what}, not of a folder") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(where, "is not a regular file (a device, pipe or socket)",
                    f"save the {what} to a file and pass its path")
    too_big = (f"{what} is larger than {_mib(limit)}", f"a {what} holds at most {_mib(limit)}; split it")
    if info.st_size > limit:
        raise error(where, *too_big)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except PermissionError:
        raise error(where, "permission denied", f"check that the {what} is readable") from None
    except OSError as err:
        raise error(where, f"cannot read the {what}: {err.strerror}", "check the path") from None
    if len(data) > limit:  # it grew since stat
        raise error(where, *too_big)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(f"{where}:{line}", f"not UTF-8 text ({err.reason})", f"save the {what} as UTF-8") from None


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


class TomlError(ValueError):
    """TOML that does not parse: the line (0 when unknown) and what is wrong, in words."""

    def __init__(self, line: int, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.line = line
        self.what = what
        self.fix = fix


_TOML_AT = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)")
_LONG_NUMBER = re.compile(r"[0-9_]{1000,}")


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with every failure as a TomlError: syntax errors, nesting deep enough to
    exhaust the parser's stack, and integers too long for Python to convert."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = _TOML_AT.search(str(err))
        line = 0 if found is None else int(found.group(1)) if found.group(1) else text.count("\n") + 1
        raise TomlError(line, f"malformed TOML: {_TOML_AT.sub('', str(err))}") from None
    except RecursionError:
        raise TomlError(_deepest_line(text), "malformed TOML: arrays or inline tables nested hundreds of levels "
                                             "deep", "a rulepack condition nests at most 32 levels of all / any / "
                                             "not; flatten it") from None
    except ValueError:
        # tomllib's int() refuses more than sys.get_int_max_str_digits() digits.
        found = _LONG_NUMBER.search(text)
        line = text.count("\n", 0, found.start()) + 1 if found else 0
        raise TomlError(line, "malformed TOML: a number with thousands of digits",
                        "points and caps lie between -1000000 and 1000000") from None


def _deepest_line(text: str) -> int:
    """The line on which brackets outside strings and comments first nest deepest."""
    depth = deepest = 0
    line = best = 1
    quote = ""
    chars = iter(text)
    for char in chars:
        if char == "\n":
            line += 1
            if quote in ("'", '"'):
                quote = ""
        elif quote:
            if char == "\\" and quote == '"':
                next(chars, None)
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            for char in chars:
                if char == "\n":
                    line += 1
                    break
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, best = depth, line
        elif char in "]}":
            depth -= 1
    return best


# --- outputs ------------------------------------------------------------------------------------


class OutputError(OSError):
    """An output file that cannot be written; ``str()`` is one line naming it and the fix."""

    def __init__(self, path: str, what: str, fix: str) -> None:
        super().__init__(f"{path}: {what}; {fix}")
        self.line = f"{path}: {what}; {fix}"

    def __str__(self) -> str:
        return self.line


def describe_os_error(path: str, err: OSError) -> OutputError:
    """An OSError met while writing ``path`` as a one-line OutputError."""
    if isinstance(err, OutputError):
        return err
    reason = err.strerror or type(err).__name__
    if isinstance(err, FileNotFoundError):
        return OutputError(path, "the folder does not exist", "create it first or write somewhere else")
    if isinstance(err, PermissionError):
        return OutputError(path, "permission denied", "choose a folder you can write to")
    if isinstance(err, IsADirectoryError):
        return OutputError(path, "is a directory", "name a file to write")
    return OutputError(path, f"cannot write: {reason}", "free some space or choose another place")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when both paths name one file (resolved through links; a missing path is compared by name)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def refuse_overwriting_inputs(outputs: Iterable[tuple[str, str]], inputs: Iterable[tuple[str, str]]) -> None:
    """Raise OutputError when an output (option, path) names the same file as an input (kind, path)
    or as another output. ``-`` (standard input or output) is never a file here."""
    seen: list[tuple[str, str]] = []
    inputs = [(kind, path) for kind, path in inputs if path and path != "-"]
    for option, path in outputs:
        if not path or path == "-":
            continue
        for kind, source in inputs:
            if same_file(path, source):
                raise OutputError(path, f"{option} would overwrite the {kind} {source}",
                                  "write the output to another file")
        for other_option, other in seen:
            if same_file(path, other):
                raise OutputError(path, f"{option} and {other_option} name the same file", "give each its own file")
        seen.append((option, path))


class AtomicOutput:
    """An output file written under a temporary name in its folder and renamed over ``path`` by
    :meth:`commit`; :meth:`discard` removes it. A reader of ``path`` sees the old file or the whole
    new one, and a run that stops early leaves the old file as it was.

    A path that is a device or a pipe (``/dev/null``, ``/dev/stdout``) is written straight
    through: there is no file to replace. A symbolic link is followed, so the link stays.
    Write errors are raised as OutputError naming ``path``. With ``binary`` it takes bytes (a
    Parquet file) rather than text.
    """

    def __init__(self, path: str, *, encoding: str = "utf-8", newline: str = "", binary: bool = False) -> None:
        self.path = path
        self.done = False
        target = os.path.realpath(path)
        try:
            info: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            info = None
        except OSError as err:
            raise describe_os_error(path, err) from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise OutputError(path, "is a directory", "name a file to write")
        self.target = target
        self.temp: str | None = None
        mode: dict[str, Any] = {"mode": "wb"} if binary else {"mode": "w", "encoding": encoding, "newline": newline}
        try:
            if info is not None and not stat.S_ISREG(info.st_mode):
                self.stream: IO[Any] = open(target, **mode)  # noqa: SIM115
            else:
                fd, self.temp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".partial",
                                                 dir=os.path.dirname(target))
                self.stream = os.fdopen(fd, **mode)
        except OSError as err:
            raise describe_os_error(path, err) from None

    def write(self, text: str | bytes) -> int:
        try:
            return self.stream.write(text)
        except OSError as err:
            raise describe_os_error(self.path, err) from None

    @property
    def closed(self) -> bool:
        """Whether the file is finished (committed or discarded); pyarrow's writers ask before writing."""
        return self.done

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as err:
            raise describe_os_error(self.path, err) from None

    def sync(self) -> None:
        """Flush and sync the file, so the write errors a disk can give are raised before any
        output of the run is renamed into place (see :func:`commit_all`)."""
        try:
            self.stream.flush()
            if self.temp is not None:
                os.fsync(self.stream.fileno())
        except OSError as err:
            self.discard()
            raise describe_os_error(self.path, err) from None

    def commit(self) -> None:
        """Flush, sync and rename the finished file into place."""
        if self.done:
            return
        self.sync()
        try:
            self.stream.close()
            if self.temp is not None:
                _keep_mode(self.target, self.temp)
                os.replace(self.temp, self.target)
        except OSError as err:
            self.discard()
            raise describe_os_error(self.path, err) from None
        self.done = True

    def discard(self) -> None:
        """Remove the unfinished file; ``path`` keeps what it had."""
        if self.done:
            return
        self.done = True
        try:
            self.stream.close()
        except OSError:
            pass
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except OSError:
                pass

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def commit_all(outputs: Iterable[AtomicOutput]) -> None:
    """Commit several outputs of one run: every file is written to disk before any is renamed,
    so a full disk leaves all of them as they were rather than some new and some old."""
    outputs = list(outputs)
    try:
        for output in outputs:
            output.sync()
    except OutputError:
        for output in outputs:
            output.discard()
        raise
    for output in outputs:
        output.commit()


def _keep_mode(path: str, temp: str) -> None:
    """The new file gets the old one's permissions, or the usual ones (mkstemp makes it 0600)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(temp, mode)


__all__ = [
    "MAX_TEXT_FILE_BYTES",
    "AtomicOutput",
    "OutputError",
    "TomlError",
    "commit_all",
    "describe_os_error",
    "parse_toml",
    "read_text_file",
    "refuse_overwriting_inputs",
    "same_file",
]
