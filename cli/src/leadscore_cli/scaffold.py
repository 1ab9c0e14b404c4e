"""``leadscore new plugin NAME`` and ``leadscore new pack NAME``: write a ready-to-use starting point.

The files come from templates shipped with the CLI (``templates/plugin``, ``templates/pack``),
filled in with :class:`string.Template`; a path part ``__name__``, ``__package__`` or
``__package_name__`` is replaced too. What is written installs, checks and passes its own tests
as it stands (a test builds one in a fresh virtual environment and runs them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

import click

from leadscore import __version__

_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


class ScaffoldError(click.ClickException):
    """A name or folder problem: one line, exit code 2."""

    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"leadscore: {self.format_message()}", err=True)


def names_for(name: str) -> dict[str, str]:
    """Every spelling of a plugin or pack name the templates use."""
    if not _NAME.fullmatch(name):
        raise ScaffoldError(f"{name!r} is not a plugin name; use lower case letters, digits and single hyphens, "
                            f"starting with a letter, e.g. acme-crm")
    package_name = name.replace("-", "_")
    return {
        "name": name,
        "dist": f"leadscore-{name}",
        "package": f"leadscore_{package_name}",
        "package_name": package_name,
        "signal_prefix": package_name,
        "leadscore_version": __version__,
    }


def _templates(root: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _templates(entry, path + "/")
        elif entry.name.endswith(".tmpl"):
            yield path.removesuffix(".tmpl"), entry


def render(kind: str, names: dict[str, str]) -> dict[str, str]:
    """Relative path -> text of every file of a ``plugin`` or ``pack`` scaffold."""
    out = {}
    for template_path, entry in _templates(files("leadscore_cli") / "templates" / kind):
        path = template_path
        for key in ("package_name", "package", "name"):  # longest first: __package_name__ before __package__
            path = path.replace(f"__{key}__", names[key])
        out[path] = Template(entry.read_text(encoding="utf-8")).substitute(names)
    return out


def write(kind: str, name: str, folder: Path) -> list[Path]:
    """Write the scaffold into ``folder`` (created; refused if it holds any of the files)."""
    names = names_for(name)
    rendered = render(kind, names)
    clashes = [folder / path for path in rendered if (folder / path).exists()]
    if clashes:
        raise ScaffoldError(f"{clashes[0]}: already exists; choose another --dir or name, nothing was written")
    written = []
    try:
        for path, text in rendered.items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(target)
    except OSError as err:
        # A read-only folder or a full disk: take back what was written, say so in one line.
        for done in written:
            done.unlink(missing_ok=True)
        raise ScaffoldError(f"{err.filename or folder}: cannot write: {err.strerror or err}; choose another --dir, "
                            f"nothing was written") from None
    return written


def register(cli: click.Group, get_pm: Callable[[], object]) -> None:
    @cli.group()
    def new() -> None:
        """Write a starting point: a plugin distribution or a rulepack with its cases.

        \b
        Examples:
          leadscore new plugin acme-crm
          leadscore new pack acme --dir rulepacks/
        """

    @new.command("plugin")
    @click.argument("name")
    @click.option("--dir", "folder", type=click.Path(file_okay=False), help="Where to write it (default: ./leadscore-NAME).")
    def new_plugin(name: str, folder: str | None) -> None:
        """Write a plugin distribution NAME: a signal extractor, a rulepack using it, case files and tests.

        It installs with `pip install -e` and its tests pass as written; docs/hooks.md walks through it.

        \b
        Example:
          leadscore new plugin acme-crm && cd leadscore-acme-crm && pip install -e '.[test]' && pytest
        """
        target = Path(folder) if folder else Path(names_for(name)["dist"])
        written = write("plugin", name, target)
        click.echo(f"wrote {len(written)} files in {target}/: pip install -e '{target}[test]' and run pytest there")

    @new.command("pack")
    @click.argument("name")
    @click.option("--dir", "folder", type=click.Path(file_okay=False), default=".", show_default=True,
                  help="Where to write NAME.toml and NAME-cases.toml.")
    def new_pack(name: str, folder: str) -> None:
        """Write a rulepack NAME.toml that extends firr-base, and NAME-cases.toml that tests it.

        \b
        Example:
          leadscore new pack acme && leadscore check acme.toml && leadscore test acme-cases.toml
        """
        written = write("pack", name, Path(folder))
        click.echo("wrote " + ", ".join(str(p) for p in written))
