"""``--dedupe`` on the columnar engine's file scan: the copies of a lead id merged at its last copy's
line, as the python reader's ``merge_duplicates`` merges them (leadscore.columnar.scan.Copies),
JSON Lines, CSV and Parquet, with and without the account pass and an activities file: the same
files as the python engine, and the leads never read as a stream of records.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb", reason="the columnar engine needs leadscore[columnar]")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from leadscore.columnar import scan  # noqa: E402
from leadscore.columnar import table as lead_table  # noqa: E402
from leadscore.io import duplicates  # noqa: E402
from tests.test_columnar_engine import BAD_LINES, GOOD, _generated  # noqa: E402
from tests.test_columnar_table import _score as score_files  # noqa: E402


def _score(tmp_path: Path, engine: str, leads: Path, *extra: str) -> tuple[int, str, str, str]:
    return score_files(tmp_path, engine, leads, "--dedupe", *extra)


def _scanned_only(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The records path's merge refused (the scan merges the copies itself); the lines the scan
    merged, as it merges them."""
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the leads were read as records")

    monkeypatch.setattr(duplicates, "merge_duplicates", refused)
    merged: list[int] = []
    hold = scan.Copies.hold

    def counted(self: scan.Copies, lead_id: str, line: int, form: Any) -> None:
        merged.append(line)
        hold(self, lead_id, line, form)

    monkeypatch.setattr(scan.Copies, "hold", counted)
    return merged


# --- JSON Lines -------------------------------------------------------------------------------------

_SAMPLES = [json.loads(line) for line in GOOD if line.strip()]
_ACTS = [{"type": "demo_request", "at": "2026-11-20T10:00:00Z"},
         {"type": "pricing_page_visit", "at": "2026-11-21T09:30:00Z", "properties": {"url": "/pricing"}},
         {"type": "page_view", "at": "2026-11-02T08:00:00Z"},
         {"type": "g2_profile_view", "at": "2026-11-19T08:00:00Z"},  # a type no pack knows: counted
         {"type": "page_view", "at": "yesterday"}]  # left out by the reader (the python reader's line)


@st.composite
def _copy(draw: Any) -> str:
    """A line with the id of one of the first sample leads, with some of its values, others changed,
    activities of its own (some the same as another copy's: merged once) or none."""
    base = draw(st.sampled_from(_SAMPLES[:6]))
    lead: dict[str, Any] = {"id": base["id"]}
    for key in draw(st.lists(st.sampled_from(sorted(set(base) - {"id", "activities"})), unique=True)):
        lead[key] = base[key]
    if draw(st.booleans()):
        lead["title"] = draw(st.sampled_from(["CEO", "Student", "  VP Sales  ", None, "Head of Growth"]))
    if draw(st.booleans()):
        lead["email"] = draw(st.sampled_from(["new@acme.io", "someone@gmail.com", None, " Dana@Acme.io "]))
    if draw(st.booleans()):
        lead["activities"] = draw(st.lists(st.sampled_from(_ACTS), max_size=4))
    return json.dumps(lead)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.sampled_from(GOOD[:10]), _copy(), st.sampled_from(BAD_LINES[:6])),
                      min_size=1, max_size=24),
       packs=st.sampled_from([("-r", "firr-base"), (), ("--explain",)]),
       keep=st.booleans(), block_bytes=st.sampled_from((1_500, 4_000, 1 << 20)))
def test_copies_of_a_lead_id_merge_on_the_json_lines_scan_as_the_python_reader_merges_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], packs: tuple[str, ...], keep: bool,
        block_bytes: int) -> None:
    """Lines of the sample leads, copies of the first six ids (values changed, activities added or
    repeated, values the SQL does not take), bad lines; one pass for the ids without the account pass
    (firr-base), the account pass's with it (every installed pack); blocks of a few lines, the first
    pass's blocks kept or decoded again."""
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    wanted = _score(tmp_path, "python", source, *packs)
    with monkeypatch.context() as patched:
        for name in ("BLOCK_BYTES", "EXPLAIN_BLOCK_BYTES"):
            patched.setattr(scan, name, block_bytes)
        patched.setattr(scan, "KEEP_BLOCKS", keep)
        _scanned_only(patched)
        patched.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
        assert _score(tmp_path, "duckdb", source, *packs) == wanted


def _with_copies(source: Path, seed: int, share: float) -> tuple[Path, int]:
    """``source``'s lines with about ``share`` of its leads copied (a changed title, some of the
    activities and one more; an exact repeat of the line now and then) up to 300 lines further on
    or back; the number of distinct ids."""
    rng = random.Random(seed)
    lines = source.read_text(encoding="utf-8").splitlines()
    out = list(lines)
    for line in lines:
        if rng.random() < share:
            lead = json.loads(line)
            if rng.random() < 0.8:
                lead["title"] = rng.choice(["CEO", "Student", None, "VP Sales", " cto "])
                lead["activities"] = lead.get("activities", [])[: rng.randint(0, 5)] + [rng.choice(_ACTS[:4])]
            out.insert(rng.randint(0, len(out)), json.dumps(lead))
    path = source.with_name("copies.jsonl")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path, len(lines)


@pytest.mark.parametrize("packs", [("-r", "firr-base"), (), ("-r", "firr-base", "--explain")])
def test_generated_leads_with_copies_merge_on_the_json_lines_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packs: tuple[str, ...]) -> None:
    """bench/generate.py's leads, one in ten copied somewhere in the file, in blocks of about 40
    leads: the python engine's files, every copy merged by the scan."""
    source, distinct = _with_copies(_generated(tmp_path, 400, 11), 5, 0.1)
    wanted = _score(tmp_path, "python", source, *packs)
    assert wanted[0] == 0 and f"scored {distinct} + rejected 0 == read {distinct}" in wanted[3]
    for name in ("BLOCK_BYTES", "EXPLAIN_BLOCK_BYTES"):
        monkeypatch.setattr(scan, name, 60_000)
    merged = _scanned_only(monkeypatch)
    assert _score(tmp_path, "duckdb", source, *packs) == wanted
    ids = Counter(json.loads(line)["id"] for line in source.read_text(encoding="utf-8").splitlines())
    copies = sum(n for n in ids.values() if n > 1)
    # Each line of a copied id once in the scoring pass, and with the account pass (every installed
    # pack) once more at that pass's end.
    assert copies > 20 and len(merged) == copies * (1 if "firr-base" in packs else 2)


# --- CSV and Parquet, with an activities file ---------------------------------------------------------

_IDS = ("L-1", "L-2", "L-3", " L-1", "")  # " L-1": the reader strips it (its code's row), "": rejected
_TITLES = ("VP Marketing", "Student", "CTO", " Director ", "", None)
_EMAILS = ("dana@acme.io", "Bob@Gmail.com", "eve@acme.io", "", None)
_EMPLOYEES = ("250", "12", "1200.0", "12.5", "", None)  # 12.5: rejected
_STAMPS = ("2026-11-20T10:00:00Z", "2026-11-01", "", None)
_ACT_ROWS = (("L-1", "pricing_page_visit", "2026-11-20T10:00:00Z", "/pricing"),
             ("L-1", "demo_request", "2026-11-21T09:00:00Z", ""),
             ("L-2", "page_view", "2026-11-19T08:00:00Z", "/blog"),
             ("L-3", "demo_request", "2026-11-22T08:00:00Z", "/demo"),
             ("L-3", " page_view", "2026-11-22T08:00:00Z", "/x"),  # spaces: the reader's code
             ("L-2", "pricing_page_visit", "2026-02-30T10:00:00Z", ""),  # no such day: left out
             ("L-1", "g2_profile_view", "2026-11-18T08:00:00Z", ""),  # no pack knows it: counted (repeats too)
             ("L-2", "g2_profile_view", "2026-11-18T08:00:00Z", ""),
             ("L-9", "page_view", "2026-11-20T10:00:00Z", ""))  # no such lead: rejected


@st.composite
def _lead_rows(draw: Any) -> list[list[Any]]:
    return [[draw(st.sampled_from(values)) for values in (_IDS, _EMAILS, _TITLES, _STAMPS, _EMPLOYEES)]
            + ["Acme", "acme.io"] for _ in range(draw(st.integers(1, 12)))]


def _write(path: Path, header: list[str], rows: list[Any], as_parquet: bool) -> Path:
    if as_parquet:
        path = path.with_suffix(".parquet")
        pq.write_table(pa.table({name: pa.array([row[i] for row in rows], pa.string())
                                 for i, name in enumerate(header)}), path)
        return path
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    return path


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(rows=_lead_rows(), acts=st.lists(st.sampled_from(_ACT_ROWS), max_size=8), as_parquet=st.booleans(),
       with_file=st.booleans(), packs=st.sampled_from([("-r", "firr-base"), ()]), block_rows=st.sampled_from((2, 5, 64)))
def test_copies_of_a_lead_id_merge_on_the_table_scan_as_the_python_reader_merges_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[list[Any]], acts: list[Any], as_parquet: bool,
        with_file: bool, packs: tuple[str, ...], block_rows: int) -> None:
    """Rows of three ids (and one the reader strips to the first, one without an id), with an
    activities file or without, in blocks of a few rows: the python engine's files."""
    header = ["id", "email", "title", "created_at", "company.employees", "company.name", "company.domain"]
    leads = _write(tmp_path / "leads.csv", header, rows, as_parquet)
    extra: tuple[str, ...] = packs
    if with_file:
        extra += ("--activities", str(_write(tmp_path / "acts.csv", ["lead_id", "type", "at", "properties.url"],
                                             acts, as_parquet)))
    wanted = _score(tmp_path, "python", leads, *extra)
    with monkeypatch.context() as patched:
        for name in ("BLOCK_ROWS", "FILE_BLOCK_ROWS"):
            patched.setattr(lead_table, name, block_rows)
        _scanned_only(patched)
        patched.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
        assert _score(tmp_path, "duckdb", leads, *extra) == wanted


@pytest.mark.parametrize("as_parquet", [False, True])
@pytest.mark.parametrize("packs", [("-r", "firr-base"), ()])
def test_generated_leads_with_copies_and_their_activities_file_merge_on_the_table_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_parquet: bool, packs: tuple[str, ...]) -> None:
    """bench/generate.py's leads with copies as a leads file and an activities file (each copy's
    activities under its id), in blocks of 64 rows: the python engine's files."""
    import subprocess
    import sys

    source, distinct = _with_copies(_generated(tmp_path, 300, 13), 7, 0.1)
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_parquet.py"
    subprocess.run([sys.executable, str(bench), "--write-inputs", str(source)], check=True, capture_output=True)
    suffix = "parquet" if as_parquet else "csv"
    leads, acts = (source.with_name(f"copies-{part}.{suffix}") for part in ("leads", "activities"))
    extra = (*packs, "--activities", str(acts))
    wanted = _score(tmp_path, "python", leads, *extra)
    assert wanted[0] == 0 and f"scored {distinct} + rejected 0 == read {distinct}" in wanted[3]
    for name in ("BLOCK_ROWS", "FILE_BLOCK_ROWS"):
        monkeypatch.setattr(lead_table, name, 64)
    _scanned_only(monkeypatch)
    assert _score(tmp_path, "duckdb", leads, *extra) == wanted
