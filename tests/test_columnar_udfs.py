"""The columnar plan's Python functions remember their results per argument: the same column out as
calling the function on every row."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb", reason="the columnar engine needs leadscore[columnar]")

from leadscore.columnar.context import Udfs, _vectorised  # noqa: E402


def _revenue_text(v: float) -> str:
    return f"revenue {v:,.0f}"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1500.0, 2.5, -2.5])), max_size=20),
                min_size=1, max_size=4))
def test_remembered_results_are_the_row_by_row_column(batches: list[list[float | None]]) -> None:
    udfs = Udfs()
    udfs.add("ls_text", _revenue_text, ("DOUBLE",), "VARCHAR")
    fn, _, _ = udfs.functions["ls_text"]
    run = _vectorised(fn, pa.string())  # one function across batches, as on a connection
    for values in batches:
        got = run(pa.array(values, type=pa.float64())).to_pylist()
        assert got == [None if v is None else _revenue_text(v) for v in values]
