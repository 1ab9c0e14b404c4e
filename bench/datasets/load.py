"""Turn a public dataset into leadscore leads and outcomes, as its mapping file (bench/datasets/*.toml) says.

    python bench/datasets/load.py bench/datasets/x-education.toml --out bench/out/x-education

writes ``leads.jsonl`` and ``outcomes.csv`` to the output folder. The data are read from
``../shared/data`` beside the repository, or beside a folder above it (``--data`` to point
elsewhere), and checked against the sha256 in the mapping; they are never copied into the
repository. Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _data_folder() -> Path:
    """``shared/data`` beside the repository (or beside a folder above it, for a git worktree)."""
    for parent in REPO.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return REPO.parent / "shared" / "data"


DATA = _data_folder()
LEAD_KEYS = ("id", "email", "title", "source", "created_at", "account_id", "first_name", "last_name")
COMPANY_KEYS = ("name", "domain", "industry", "employees", "annual_revenue", "country", "tier")


class MappingError(Exception):
    """A mapping file that does not fit its data: one line saying where and what."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _typed(value: str, kind: str, where: str) -> Any:
    if kind == "text":
        return value
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise MappingError(f"{where}: {value!r} is not a number") from None
        return int(number) if number.is_integer() else number
    if kind == "yes_no":
        if value.lower() not in ("yes", "no"):
            raise MappingError(f"{where}: {value!r} is not Yes/No")
        return value.lower() == "yes"
    raise MappingError(f"{where}: unknown field type {kind!r} (use text, number or yes_no)")


def load(mapping_path: Path, data: Path = DATA) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]], dict[str, Any]]:
    """(leads as JSON-ready dicts, outcome rows (lead_id, stage, at), the mapping)."""
    mapping = tomllib.loads(mapping_path.read_text(encoding="utf-8"))
    files: dict[str, Path] = {}
    for key, spec in mapping["files"].items():
        path = data / spec["path"]
        if not path.is_file():
            raise MappingError(f"{path}: not found; put the shared data beside the repository or pass --data")
        got = _sha256(path)
        if got != spec["sha256"]:
            raise MappingError(f"{path}: sha256 {got} is not the {spec['sha256']} the mapping was written for")
        files[key] = path
    header, rows = _rows(files["leads"])
    lead_map: Mapping[str, str] = {k: v for k, v in mapping["lead"].items() if k != "id_prefix"}
    field_map: Mapping[str, Mapping[str, str]] = mapping.get("fields", {})
    outcome = mapping["outcomes"]
    used = set(lead_map.values()) | {f["column"] for f in field_map.values()} | set(mapping.get("excluded", {}))
    used |= {outcome.get("column"), outcome.get("lead_stage", {}).get("at")} - {None}
    unreviewed = [c for c in header if c not in used]
    if unreviewed:
        raise MappingError(f"{mapping_path}: column {unreviewed[0]!r} is neither mapped nor listed in [excluded]")
    missing = set(mapping.get("missing", {}).get("values", [""]))
    prefix = mapping["lead"].get("id_prefix", "")
    leads, outcomes = [], []
    for number, row in enumerate(rows, 2):
        where = f"{files['leads'].name}:{number}"
        lead: dict[str, Any] = {}
        for key, column in lead_map.items():
            value = row[column].strip()
            if value in missing:
                continue
            if key == "id":
                lead["id"] = prefix + value
            elif key.startswith("company."):
                lead.setdefault("company", {})[key.removeprefix("company.")] = value
            elif key in LEAD_KEYS:
                lead[key] = value
            else:
                raise MappingError(f"{mapping_path}: [lead] {key!r} is not a lead attribute")
        fields = {}
        for name, spec in field_map.items():
            value = row[spec["column"]].strip()
            if value not in missing:
                fields[name] = _typed(value, spec.get("type", "text"), f"{where}: {spec['column']}")
        if fields:
            lead["fields"] = fields
        leads.append(lead)
        if "column" in outcome and row[outcome["column"]].strip() in outcome["positive"]:
            outcomes.append((lead["id"], outcome["stage"], ""))
        if "lead_stage" in outcome:
            outcomes.append((lead["id"], outcome["lead_stage"]["stage"], row[outcome["lead_stage"]["at"]].strip()))
    if "file" in outcome:
        _, deals = _rows(files[outcome["file"]])
        for deal in deals:
            outcomes.append((prefix + deal[outcome["file_lead_id"]].strip(), outcome["file_stage"],
                             deal[outcome["file_at"]].strip()))
    return leads, outcomes, mapping


def write(leads: list[dict[str, Any]], outcomes: list[tuple[str, str, str]], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    leads_path, outcomes_path = out / "leads.jsonl", out / "outcomes.csv"
    with open(leads_path, "w", encoding="utf-8") as handle:
        for lead in leads:
            handle.write(json.dumps(lead, ensure_ascii=False) + "\n")
    with open(outcomes_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["lead_id", "stage", "at"])
        writer.writerows(outcomes)
    return leads_path, outcomes_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mapping", type=Path, help="a bench/datasets/*.toml mapping file")
    parser.add_argument("--out", type=Path, required=True, help="folder for leads.jsonl and outcomes.csv")
    parser.add_argument("--data", type=Path, default=DATA, help=f"the shared data folder (default: {DATA})")
    args = parser.parse_args()
    try:
        leads, outcomes, _ = load(args.mapping, args.data)
    except MappingError as err:
        sys.exit(f"load.py: {err}")
    leads_path, outcomes_path = write(leads, outcomes, args.out)
    print(f"{len(leads)} leads -> {leads_path}; {len(outcomes)} outcome rows -> {outcomes_path}")


if __name__ == "__main__":
    main()
