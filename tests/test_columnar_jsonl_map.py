"""A JSON Lines file read through a map (``--map``) by the columnar engine's scan: the map's activity
type renames (the part of a map a JSON Lines lead reads) applied to each decoded block's types and
to the lines the python reader's code reads, with the python engine's files, warnings included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb", reason="the columnar engine needs leadscore[columnar]")
pa = pytest.importorskip("pyarrow")

from leadscore.columnar import scan  # noqa: E402
from leadscore.columnar.scan import renamed_types  # noqa: E402
from leadscore.io.maps import load_map  # noqa: E402
from tests.test_columnar_engine import BAD_LINES, GOOD, SAMPLES, records_refused  # noqa: E402
from tests.test_columnar_table import _score  # noqa: E402

RENAMES = ('[map]\nname = "renames"\n\n[lead]\nid = "id"\n\n[activity_types]\n"Pricing Page" = "pricing_page_visit"\n'
           'g2_profile_view = "comparison_page_visit"\n"Demo Request" = "demo_request"\n')
# Spellings the map renames (exactly, or with case and spaces aside), and some it leaves.
SPELLINGS = ("Pricing Page", "pricing page", "PRICING_PAGE", "g2_profile_view", "G2 Profile View", "Demo Request",
             "demo_request", "page_view", "webinar_attended", "Made Up")
TIMES = ("2026-11-20T10:00:00Z", "2026-11-02T08:00:00Z", "2026-11-22T23:59:59.500Z", "2026-11-20", "yesterday")
_SAMPLE_LEADS = [json.loads(line) for line in GOOD if line.strip()]


@st.composite
def _line(draw: Any) -> str:
    """A sample lead under one of a few ids, with activities of types the map renames or leaves."""
    lead = {**draw(st.sampled_from(_SAMPLE_LEADS[:8])), "id": draw(st.sampled_from(("R-1", "R-2", "R-3", "R-4")))}
    lead["activities"] = [{"type": draw(st.sampled_from(SPELLINGS)), "at": draw(st.sampled_from(TIMES))}
                          for _ in range(draw(st.integers(0, 4)))]
    return json.dumps(lead)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_line(), st.sampled_from(GOOD[:6]), st.sampled_from(BAD_LINES[:4])),
                      min_size=1, max_size=20),
       extra=st.sampled_from([("-r", "firr-base"), (), ("--explain",), ("-r", "firr-base", "--dedupe")]),
       block_bytes=st.sampled_from((1_500, 1 << 20)))
def test_a_json_lines_file_through_a_map_gives_the_python_engines_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], extra: tuple[str, ...],
        block_bytes: int) -> None:
    """Renamed types score as the types they become and are counted (or not) as unknown under their
    new names; lines the decoder leaves to the python reader (bad times, bad lines) read with the
    same map; blocks of a few lines; the account pass and --dedupe too."""
    source, column_map = tmp_path / "in.jsonl", tmp_path / "map.toml"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    column_map.write_text(RENAMES, encoding="utf-8")
    args = (*extra, "--map", str(column_map))
    wanted = _score(tmp_path, "python", source, *args)
    with monkeypatch.context() as patched:
        for name in ("BLOCK_BYTES", "EXPLAIN_BLOCK_BYTES"):
            patched.setattr(scan, name, block_bytes)
        records_refused(patched)
        patched.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
        assert _score(tmp_path, "duckdb", source, *args) == wanted


def test_the_sample_leads_through_a_map_of_renames_score_as_the_python_engine_scores_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 46 sample leads with their activity types respelt as an export would write them, and a
    map that renames them back: the same files as the python engine, which are those of the leads
    as first spelt."""
    column_map = tmp_path / "map.toml"
    column_map.write_text('[map]\nname = "respelt"\n\n[lead]\nid = "id"\n\n[activity_types]\n'
                          '"Pricing Page" = "pricing_page_visit"\n"Demo Request" = "demo_request"\n', encoding="utf-8")
    respelt = tmp_path / "leads.jsonl"
    text = (SAMPLES / "leads.jsonl").read_text(encoding="utf-8")
    assert text.count('"pricing_page_visit"') > 5 and text.count('"demo_request"') > 5
    respelt.write_text(text.replace('"pricing_page_visit"', '"Pricing Page"').replace('"demo_request"', '"DEMO REQUEST"'),
                       encoding="utf-8")
    for extra in (("-r", "firr-base", "--explain"), ()):
        plain = _score(tmp_path, "python", SAMPLES / "leads.jsonl", *extra)
        wanted = _score(tmp_path, "python", respelt, *extra, "--map", str(column_map))
        assert wanted[:3] == plain[:3] and wanted[0] == 0
        with monkeypatch.context() as patched:
            records_refused(patched)
            assert _score(tmp_path, "duckdb", respelt, *extra, "--map", str(column_map)) == wanted


def test_renamed_types_takes_each_chunks_distinct_types_through_the_map(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text(RENAMES, encoding="utf-8")
    column_map = load_map(str(path))
    acts = pa.table({"k": pa.chunked_array([[1, 1, 2], [3]], pa.int64()),
                     "type": pa.chunked_array([["Pricing Page", "page_view", "pricing page"], ["G2 Profile View"]])})
    assert renamed_types(acts, column_map).column("type").to_pylist() == [
        "pricing_page_visit", "page_view", "pricing_page_visit", "comparison_page_visit"]
    assert renamed_types(acts, None) is acts
