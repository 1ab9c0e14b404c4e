"""Lead readers: JSON Lines and CSV in, Leads or Rejections out, with exact messages for bad input."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from leadscore.errors import InputError
from leadscore.io import lead_from_dict, parse_timestamp, read_leads
from leadscore.io import readers
from leadscore.model import Activity, Company, Lead, Rejection

DANA = {
    "id": "L-1001",
    "email": "Dana@Acme.io ",
    "title": "VP Marketing",
    "source": "linkedin_ads",
    "created_at": "2026-10-01T12:00:00Z",
    "account_id": "acme.io",
    "company": {
        "name": "Acme",
        "domain": "acme.io",
        "industry": "saas",
        "employees": 1200,
        "annual_revenue": 250000000,
        "country": "US",
    },
    "fields": {"budget_confirmed": True},
    "activities": [
        {"type": "demo_request", "at": "2026-11-21T09:00:00Z"},
        {"type": "pricing_page_visit", "at": "2026-11-20T10:00:00Z", "properties": {"url": "/pricing"}},
    ],
}

LEADS_CSV = (
    "id,email,title,source,created_at,company.name,company.domain,company.employees,"
    "company.annual_revenue,company.country,fields.budget_confirmed,fields.lead_score_old,fields.zip\n"
    "L-2001,sam@globex.com,Head of Ops,webinar,2026-09-15T08:30:00Z,Globex,globex.com,450,"
    "38000000,DE,TRUE,42,02134\n"
    'L-2002,kim@initech.com,"Director, IT",organic,2026-10-02,Initech,initech.com,85,,US,false,3.5,\n'
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*leads: dict) -> str:
    return "".join(json.dumps(lead) + "\n" for lead in leads)


# --- lead_from_dict -------------------------------------------------------------------------


def test_lead_from_dict_builds_the_design_example():
    lead = lead_from_dict(DANA, "leads.jsonl:1")

    assert lead == Lead(
        id="L-1001",
        email="dana@acme.io",
        title="VP Marketing",
        source="linkedin_ads",
        created_at=utc(2026, 10, 1, 12),
        account_id="acme.io",
        company=Company(
            name="Acme",
            domain="acme.io",
            industry="saas",
            employees=1200,
            annual_revenue=250000000.0,
            country="US",
        ),
        fields={"budget_confirmed": True},
        activities=(
            Activity(type="pricing_page_visit", at=utc(2026, 11, 20, 10), properties={"url": "/pricing"}),
            Activity(type="demo_request", at=utc(2026, 11, 21, 9)),
        ),
    )


def test_activities_at_the_same_instant_keep_their_input_order():
    lead = lead_from_dict(
        {
            "id": "L-1",
            "activities": [
                {"type": "email_click", "at": "2026-11-20T10:00:00Z", "id": "b"},
                {"type": "page_view", "at": "2026-11-19T10:00:00Z", "id": "a"},
                {"type": "email_open", "at": "2026-11-20T12:00:00+02:00", "id": "c"},
            ],
        },
        "x:1",
    )
    assert [a.id for a in lead.activities] == ["a", "b", "c"]


def test_int_id_is_text_and_empty_strings_are_missing():
    lead = lead_from_dict({"id": 1001, "email": "", "title": "  ", "company": {"employees": ""}}, "x:1")
    assert lead.id == "1001"
    assert lead.email is None
    assert lead.title is None
    assert lead.company == Company()


def test_employees_accepts_whole_numbers_in_any_spelling():
    for value in (1200, 1200.0, "1200", " 1200 ", "1200.0"):
        assert lead_from_dict({"id": "L", "company": {"employees": value}}, "x:1").company.employees == 1200


def test_annual_revenue_accepts_numeric_text():
    lead = lead_from_dict({"id": "L", "company": {"annual_revenue": "2.5e8"}}, "x:1")
    assert lead.company.annual_revenue == 250000000.0


@pytest.mark.parametrize(
    ("lead", "message"),
    [
        (
            {"id": "L-1", "company": {"employees": "lots"}},
            "leads.jsonl:12: company.employees: 'lots' is not a whole number; write digits such as 1200",
        ),
        (
            {"id": "L-1", "company": {"employees": 12.5}},
            "leads.jsonl:12: company.employees: 12.5 is not a whole number; write digits such as 1200",
        ),
        (
            {"id": "L-1", "company": {"employees": True}},
            "leads.jsonl:12: company.employees: True is not a whole number; write digits such as 1200",
        ),
        (
            {"id": "L-1", "company": {"annual_revenue": "$2M"}},
            "leads.jsonl:12: company.annual_revenue: '$2M' is not a number; write digits such as 250000000",
        ),
        (
            {"id": "L-1", "emial": "dana@acme.io"},
            "leads.jsonl:12: unknown key 'emial'; use one of: id, email, title, source, created_at, "
            "account_id, company, fields, activities, first_name, last_name",
        ),
        (
            {"id": "L-1", "company": {"size": 50}},
            "leads.jsonl:12: company: unknown key 'size'; use one of: name, domain, industry, "
            "employees, annual_revenue, country, tier",
        ),
        (
            {"email": "dana@acme.io"},
            "leads.jsonl:12: id is missing; every lead needs a non-empty id such as L-1001",
        ),
        ({"id": ""}, "leads.jsonl:12: id is missing; every lead needs a non-empty id such as L-1001"),
        (
            {"id": "L-1", "title": 7},
            "leads.jsonl:12: title: 7 is not text; write it as text in double quotes",
        ),
        (
            {"id": "L-1", "created_at": "last tuesday"},
            "leads.jsonl:12: created_at: 'last tuesday' is not a timestamp; "
            "write ISO 8601 such as 2026-11-20T10:00:00Z",
        ),
        (
            {"id": "L-1", "activities": [{"type": "page_view"}]},
            "leads.jsonl:12: activities[0].at is missing; write ISO 8601 such as 2026-11-20T10:00:00Z",
        ),
        (
            {"id": "L-1", "activities": [{"at": "2026-11-20"}]},
            "leads.jsonl:12: activities[0].type is missing; every activity needs a type such as page_view",
        ),
        (
            {"id": "L-1", "fields": {"tags": ["a", "b"]}},
            "leads.jsonl:12: fields.tags: ['a', 'b'] is not a single value; "
            "a custom field holds text, a number, true or false",
        ),
    ],
)
def test_lead_from_dict_names_the_bad_field(lead, message):
    with pytest.raises(InputError) as caught:
        lead_from_dict(lead, "leads.jsonl:12")
    assert str(caught.value) == message


# --- timestamps ---------------------------------------------------------------------------


def test_naive_timestamp_is_taken_as_utc():
    assert parse_timestamp("2026-11-20T10:00:00", "x:1", "at") == utc(2026, 11, 20, 10)
    assert parse_timestamp(datetime(2026, 11, 20, 10), "x:1", "at") == utc(2026, 11, 20, 10)


def test_offsets_are_converted_to_utc():
    parsed = parse_timestamp("2026-11-20T12:00:00+02:00", "x:1", "at")
    assert parsed == utc(2026, 11, 20, 10)
    assert parsed.tzinfo is UTC


def test_date_only_is_midnight_utc():
    assert parse_timestamp("2026-11-20", "x:1", "at") == utc(2026, 11, 20)


def test_unparseable_timestamp():
    with pytest.raises(InputError) as caught:
        parse_timestamp("20/11/2026", "leads.csv:4", "created_at")
    assert str(caught.value) == (
        "leads.csv:4: created_at: '20/11/2026' is not a timestamp; "
        "write ISO 8601 such as 2026-11-20T10:00:00Z"
    )


def test_epoch_numbers_are_not_timestamps():
    with pytest.raises(InputError, match="at: 1763632800 is not a timestamp"):
        parse_timestamp(1763632800, "x:1", "at")


# --- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_reads_leads_and_skips_blank_lines(tmp_path):
    path = write(tmp_path, "leads.jsonl", json.dumps(DANA) + "\n\n   \n" + '{"id": "L-1002"}\n')
    out = list(read_leads(path))
    assert [lead.id for lead in out] == ["L-1001", "L-1002"]
    assert out[0] == lead_from_dict(DANA, "unused")


def test_malformed_json_line_is_a_rejection(tmp_path):
    path = write(tmp_path, "leads.jsonl", '{"id": "L-1"}\n{"id": "L-2", "email": }\n{"id": "L-3"}\n')
    out = list(read_leads(path))
    assert out[1] == Rejection(
        where=f"{path}:2",
        reason="malformed JSON: Expecting value at column 24; each line must be one JSON object",
        lead_id=None,
    )
    assert [item.id for item in (out[0], out[2])] == ["L-1", "L-3"]


def test_json_that_is_not_an_object_is_a_rejection():
    out = list(read_leads(io.StringIO('["L-1"]\n'), fmt="jsonl"))
    assert out == [
        Rejection("<stdin>:1", "line is an array, not an object; each line must be one JSON object")
    ]


def test_nan_is_not_json():
    out = list(read_leads(io.StringIO('{"id": "L-1", "fields": {"score": NaN}}\n'), fmt="jsonl"))
    assert out == [
        Rejection("<stdin>:1", "malformed JSON: NaN is not a JSON value; each line must be one JSON object")
    ]


def test_bad_lead_in_jsonl_is_a_rejection_naming_the_lead(tmp_path):
    path = write(tmp_path, "leads.jsonl", jsonl({"id": "L-7", "company": {"employees": "lots"}}))
    assert list(read_leads(path, name="leads.jsonl")) == [
        Rejection(
            "leads.jsonl:1",
            "company.employees: 'lots' is not a whole number; write digits such as 1200",
            "L-7",
        )
    ]


def test_invalid_utf8_rejects_only_its_line(tmp_path):
    path = tmp_path / "leads.jsonl"
    path.write_bytes(b'{"id": "L-1", "title": "Gesch\xe4ftsf\xfchrer"}\n{"id": "L-2"}\n')
    out = list(read_leads(path, name="leads.jsonl"))
    assert out[0] == Rejection("leads.jsonl:1", "line is not valid UTF-8; save the file as UTF-8 text")
    assert out[1].id == "L-2"


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "leads.jsonl"
    path.write_bytes('\ufeff{"id": "L-1"}\n'.encode())
    assert [lead.id for lead in read_leads(path)] == ["L-1"]


def test_line_longer_than_16_mib_is_a_rejection(tmp_path):
    path = tmp_path / "leads.jsonl"
    huge = b'{"id": "L-1", "title": "' + b"x" * (16 * 1024 * 1024) + b'"}\n'
    path.write_bytes(huge + b'{"id": "L-2"}\n')
    out = list(read_leads(path, name="leads.jsonl"))
    assert out[0] == Rejection(
        "leads.jsonl:1", "line is longer than 16 MiB; each line must be one JSON object"
    )
    assert out[1].id == "L-2"


def test_stdin_style_stream():
    stream = io.StringIO(jsonl({"id": "L-1"}, {"id": "L-2", "created_at": "2026-11-20"}) + "nope\n")
    out = list(read_leads(stream, fmt="jsonl"))
    assert [item.id for item in out[:2]] == ["L-1", "L-2"]
    assert out[1].created_at == utc(2026, 11, 20)
    assert out[2] == Rejection(
        "<stdin>:3", "malformed JSON: Expecting value at column 1; each line must be one JSON object"
    )


def test_stream_format_comes_from_its_name():
    out = list(read_leads(io.StringIO("id\nL-1\n"), name="export.csv"))
    assert [lead.id for lead in out] == ["L-1"]


def test_binary_stream_is_read_too():
    out = list(read_leads(io.BytesIO(b"id,email\nL-1,a@b.io\n"), fmt="csv"))
    assert [lead.email for lead in out] == ["a@b.io"]


def test_jsonl_is_streamed_not_read_whole():
    stream = io.StringIO(jsonl(*({"id": f"L-{n}"} for n in range(1000))))
    leads = read_leads(stream, fmt="jsonl")
    assert next(leads).id == "L-0"
    # Only the first line has been consumed.
    assert stream.tell() == len('{"id": "L-0"}\n')


# --- file-level problems ------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as caught:
        read_leads(tmp_path / "nope.jsonl")
    assert str(caught.value) == f"{tmp_path / 'nope.jsonl'}: file not found; check the path"


@pytest.mark.parametrize("name", ["leads.jsonl", "leads.csv"])
def test_empty_file(tmp_path, name):
    path = write(tmp_path, name, "")
    with pytest.raises(InputError) as caught:
        list(read_leads(path, name=name))
    assert str(caught.value).startswith(f"{name}: no leads in this file; ")


def test_blank_jsonl_file_is_empty(tmp_path):
    path = write(tmp_path, "leads.jsonl", "\n\n")
    with pytest.raises(InputError) as caught:
        list(read_leads(path, name="leads.jsonl"))
    assert str(caught.value) == (
        'leads.jsonl: no leads in this file; write one JSON object per line, such as {"id": "L-1001"}'
    )


def test_csv_with_only_a_header_is_empty(tmp_path):
    path = write(tmp_path, "leads.csv", "id,email\n")
    with pytest.raises(InputError) as caught:
        list(read_leads(path, name="leads.csv"))
    assert str(caught.value) == "leads.csv: no leads in this file; write one row per lead under the header"


def test_unknown_suffix_asks_for_the_format(tmp_path):
    path = write(tmp_path, "leads.txt", '{"id": "L-1"}\n')
    with pytest.raises(InputError) as caught:
        read_leads(path, name="leads.txt")
    assert str(caught.value) == (
        "leads.txt: cannot tell the format from the suffix '.txt'; "
        "pass fmt='jsonl', 'csv' or 'parquet' (.jsonl, .ndjson, .json, .csv, .tsv and .parquet are known)"
    )
    assert [lead.id for lead in read_leads(path, fmt="jsonl")] == ["L-1"]


def test_stdin_without_a_format():
    with pytest.raises(InputError, match="^<stdin>: cannot tell the format: the name has no suffix"):
        read_leads(io.StringIO('{"id": "L-1"}\n'))


# --- CSV ------------------------------------------------------------------------------------


def test_csv_reads_dotted_columns_and_typed_fields(tmp_path):
    path = write(tmp_path, "leads.csv", LEADS_CSV)
    sam, kim = read_leads(path)

    assert sam == Lead(
        id="L-2001",
        email="sam@globex.com",
        title="Head of Ops",
        source="webinar",
        created_at=utc(2026, 9, 15, 8, 30),
        company=Company(
            name="Globex", domain="globex.com", employees=450, annual_revenue=38000000.0, country="DE"
        ),
        # A leading zero keeps a postcode as text.
        fields={"budget_confirmed": True, "lead_score_old": 42, "zip": "02134"},
    )
    assert kim.title == "Director, IT"
    assert kim.created_at == utc(2026, 10, 2)
    assert kim.company.annual_revenue is None
    assert kim.fields == {"budget_confirmed": False, "lead_score_old": 3.5}


def test_csv_row_with_the_wrong_number_of_cells(tmp_path):
    path = write(
        tmp_path,
        "leads.csv",
        "id,email,title\nL-1,a@acme.io,CEO\nL-2,b@acme.io,Director, Sales\nL-3,c@acme.io,CTO\n",
    )
    out = list(read_leads(path, name="leads.csv"))
    assert out[1] == Rejection(
        "leads.csv:3", "row has 4 cells but the header has 3; quote cells that contain commas", "L-2"
    )
    assert [out[0].id, out[2].id] == ["L-1", "L-3"]


def test_csv_unknown_columns_are_kept_as_custom_fields_with_one_warning(tmp_path):
    path = write(tmp_path, "leads.csv", "id,email,company_size,Lead Score,emial\nL-1,a@acme.io,50,7,x\n")
    report = readers.ReadReport()
    (lead,) = read_leads(path, name="leads.csv", report=report)
    assert lead.fields == {"company_size": 50, "lead_score": 7, "emial": "x"}
    assert report.warnings == [
        "leads.csv:1: 3 columns kept as custom fields: 'company_size' -> fields.company_size, "
        "'Lead Score' -> fields.lead_score, 'emial' -> fields.emial (did you mean 'email'?); "
        "map them with --map, or --strict to stop on them"
    ]


def test_csv_unknown_columns_stop_the_read_under_strict(tmp_path):
    path = write(tmp_path, "leads.csv", "id,email,company_size,Lead Score\nL-1,a@acme.io,50,7\n")
    with pytest.raises(InputError) as caught:
        list(read_leads(path, name="leads.csv", strict=True))
    assert str(caught.value) == (
        "leads.csv:1: 2 unknown columns: 'company_size' -> fields.company_size, 'Lead Score' -> fields.lead_score; "
        "map them with --map FILE.toml (or list them under [excluded]), or drop --strict to keep them as custom fields"
    )


def test_csv_without_an_id_column(tmp_path):
    path = write(tmp_path, "leads.csv", "email\na@acme.io\n")
    with pytest.raises(InputError) as caught:
        list(read_leads(path, name="leads.csv"))
    assert str(caught.value) == (
        "leads.csv:1: missing column 'id'; every lead needs a non-empty id such as L-1001; "
        "for a CRM export pass --map hubspot, --map salesforce or --map FILE.toml"
    )


def test_csv_non_numeric_employees(tmp_path):
    path = write(tmp_path, "leads.csv", "id,company.name,company.employees\nL-1,Acme,lots\n")
    assert list(read_leads(path, name="leads.csv")) == [
        Rejection(
            "leads.csv:2", "company.employees: 'lots' is not a whole number; write digits such as 1200", "L-1"
        )
    ]


def test_csv_unparseable_timestamp(tmp_path):
    path = write(tmp_path, "leads.csv", "id,created_at\nL-1,2026-13-01\n")
    assert list(read_leads(path, name="leads.csv")) == [
        Rejection(
            "leads.csv:2",
            "created_at: '2026-13-01' is not a timestamp; write ISO 8601 such as 2026-11-20T10:00:00Z",
            "L-1",
        )
    ]


def test_csv_line_numbers_are_physical_lines(tmp_path):
    path = write(
        tmp_path,
        "leads.csv",
        'id,title,company.employees\nL-1,"Head of\nGrowth",10\n\nL-2,CTO,many\n',
    )
    out = list(read_leads(path, name="leads.csv"))
    assert out[0].title == "Head of\nGrowth"
    assert out[1].where == "leads.csv:5"


def test_csv_byte_order_mark_and_empty_rows(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes("\ufeffid,email\r\nL-1,a@acme.io\r\n,\r\n".encode())
    assert [lead.id for lead in read_leads(path)] == ["L-1"]


# --- activities file ------------------------------------------------------------------------

ACTIVITIES_CSV = (
    "lead_id,type,at,properties.url,properties.seconds\n"
    "L-2001,page_view,2026-11-18T09:00:00Z,/blog/roi,35\n"
    "L-2001,pricing_page_visit,2026-11-20T10:00:00Z,/pricing,120\n"
    "L-2002,webinar_attendance,2026-11-19,,\n"
    "L-2001,demo_request,2026-11-19T16:45:00+01:00,,\n"
)


def test_activities_are_joined_and_sorted(tmp_path):
    leads = write(tmp_path, "leads.csv", LEADS_CSV)
    activities = write(tmp_path, "activities.csv", ACTIVITIES_CSV)
    sam, kim = read_leads(leads, activities=activities)

    assert sam.activities == (
        Activity(type="page_view", at=utc(2026, 11, 18, 9), properties={"url": "/blog/roi", "seconds": 35}),
        Activity(type="demo_request", at=utc(2026, 11, 19, 15, 45)),
        Activity(
            type="pricing_page_visit",
            at=utc(2026, 11, 20, 10),
            properties={"url": "/pricing", "seconds": 120},
        ),
    )
    assert kim.activities == (Activity(type="webinar_attendance", at=utc(2026, 11, 19)),)


def test_activities_file_adds_to_nested_jsonl_activities(tmp_path):
    leads = write(tmp_path, "leads.jsonl", jsonl(DANA))
    activities = write(
        tmp_path, "activities.csv", "lead_id,type,at,id\nL-1001,email_open,2026-11-20T10:00:00Z,A-9\n"
    )
    (dana,) = read_leads(leads, activities=activities)
    assert [(a.type, a.id) for a in dana.activities] == [
        ("pricing_page_visit", None),
        ("email_open", "A-9"),
        ("demo_request", None),
    ]


def test_activity_for_an_unknown_lead(tmp_path):
    leads = write(tmp_path, "leads.csv", LEADS_CSV)
    activities = write(
        tmp_path,
        "activities.csv",
        ACTIVITIES_CSV
        + "L-9999,email_click,2026-11-20T10:00:00Z,,\n"
        + "L-9999,email_open,2026-11-20T09:00:00Z,,\n",
    )
    out = list(read_leads(leads, activities=activities, name="leads.csv"))
    assert [item.id for item in out[:2]] == ["L-2001", "L-2002"]
    assert out[2:] == [
        Rejection(
            f"{activities}:6",
            "activity for unknown lead 'L-9999'; every activity's lead_id must match an id in the leads file",
            "L-9999",
        )
    ]


def test_bad_activity_row_costs_that_activity_not_its_lead(tmp_path):
    leads = write(tmp_path, "leads.csv", LEADS_CSV)
    activities = write(
        tmp_path,
        "activities.csv",
        ACTIVITIES_CSV + "L-2002,content_download,yesterday,,\n",
    )
    report = readers.ReadReport()
    out = list(read_leads(leads, activities=activities, name="leads.csv", report=report))
    assert [lead.id for lead in out] == ["L-2001", "L-2002"]
    assert [a.type for a in out[1].activities] == ["webinar_attendance"]
    assert report.skipped == [Rejection(
        f"{activities}:6",
        "activity left out: at: 'yesterday' is not a timestamp; write ISO 8601 such as 2026-11-20T10:00:00Z",
        "L-2002",
    )]
    assert report.skipped_count == 1


def test_bad_nested_activity_costs_that_activity_not_its_lead(tmp_path):
    lead = {"id": "L-1", "activities": [{"type": "page_view", "at": "2026-11-20T10:00:00Z"},
                                         {"type": "demo_request", "at": "last tuesday"}]}
    path = write(tmp_path, "leads.jsonl", jsonl(lead))
    report = readers.ReadReport()
    (read,) = read_leads(path, name="leads.jsonl", report=report)
    assert [a.type for a in read.activities] == ["page_view"]
    assert report.skipped == [Rejection(
        "leads.jsonl:1",
        "activities[1].at: 'last tuesday' is not a timestamp; write ISO 8601 such as 2026-11-20T10:00:00Z",
        "L-1",
    )]


def test_activity_row_without_type_or_with_extra_cells(tmp_path):
    leads = write(tmp_path, "leads.jsonl", jsonl({"id": "L-1"}, {"id": "L-2"}))
    activities = write(
        tmp_path,
        "activities.csv",
        "lead_id,type,at\nL-1,,2026-11-20\nL-2,page_view,2026-11-20,extra\n,page_view,2026-11-20\n",
    )
    report = readers.ReadReport()
    out = list(read_leads(leads, activities=activities, report=report))
    assert [lead.id for lead in out[:2]] == ["L-1", "L-2"]
    assert out[2:] == [
        Rejection(f"{activities}:4", "lead_id is missing; every activity needs the id of its lead"),
    ]
    assert report.skipped == [
        Rejection(
            f"{activities}:2", "activity left out: type is missing; every activity needs a type such as page_view",
            "L-1"
        ),
        Rejection(
            f"{activities}:3",
            "activity left out: row has 4 cells but the header has 3; quote cells that contain commas",
            "L-2",
        ),
    ]


def test_activities_file_needs_its_columns(tmp_path):
    leads = write(tmp_path, "leads.csv", LEADS_CSV)
    activities = write(tmp_path, "activities.csv", "lead_id,type,timestamp\n")
    with pytest.raises(InputError) as caught:
        list(read_leads(leads, activities=activities, name="leads.csv"))
    assert str(caught.value) == (
        f"{activities}:1: missing column 'at' (the header has 'timestamp'); "
        "an activities file needs the columns lead_id, type and at (or a map's [activity_columns])"
    )


def test_missing_activities_file(tmp_path):
    leads = write(tmp_path, "leads.csv", LEADS_CSV)
    with pytest.raises(InputError) as caught:
        read_leads(leads, activities=tmp_path / "activities.csv")
    assert str(caught.value) == f"{tmp_path / 'activities.csv'}: file not found; check the path"


def test_cell_values():
    convert = readers.cell_value  # re-exported from leadscore.io.maps
    cells = ("", " ", "TRUE", "False", "12", "-3", "0", "4.5", "1e3", "007", "n/a")
    assert [convert(text) for text in cells] == [
        None,
        None,
        True,
        False,
        12,
        -3,
        0,
        4.5,
        1000.0,
        "007",
        "n/a",
    ]


# --- hostile input: nesting, numbers, broken quoting and encodings (issue 12) -------------------

FIX = "each line must be one JSON object"


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("where", ["fields", "properties"])
@pytest.mark.parametrize("depth", [40, 1000, 5000])
def test_a_line_nested_too_deeply_rejects_only_that_line(tmp_path, where, depth):
    deep = (f'{{"id": "L-1", "fields": {{"x": {_nested(depth)}}}}}' if where == "fields" else
            f'{{"id": "L-1", "activities": [{{"type": "page_view", "at": "2026-11-01T00:00:00Z", '
            f'"properties": {{"p": {_nested(depth)}}}}}]}}')
    path = write(tmp_path, "leads.jsonl", deep + '\n{"id": "L-2"}\n')
    out = list(read_leads(path, name="leads.jsonl"))
    assert out[0] == Rejection("leads.jsonl:1", f"malformed JSON: nested more than 32 levels deep; {FIX}")
    assert out[1].id == "L-2"


def test_property_values_may_nest_up_to_the_limit(tmp_path):
    # 4 levels for the lead, its activities, the activity and its properties; 28 for the value.
    line = ('{"id": "L-1", "activities": [{"type": "page_view", "at": "2026-11-01T00:00:00Z", '
            f'"properties": {{"p": {_nested(28)}}}}}]}}\n')
    [lead] = read_leads(write(tmp_path, "leads.jsonl", line))
    assert readers._depth(lead.activities.record(0).properties) == 29


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 400, "9" * 5000])
@pytest.mark.parametrize("place", ["fields", "properties", "revenue"])
def test_a_number_beyond_a_double_rejects_its_line_wherever_it_is(tmp_path, number, place):
    line = {"fields": f'{{"id": "L-1", "fields": {{"x": {number}}}}}',
            "properties": f'{{"id": "L-1", "activities": [{{"type": "page_view", "at": "2026-11-01T00:00:00Z", '
                          f'"properties": {{"x": {number}}}}}]}}',
            "revenue": f'{{"id": "L-1", "company": {{"annual_revenue": {number}}}}}'}[place]
    [out] = read_leads(write(tmp_path, "leads.jsonl", line + "\n"), name="leads.jsonl")
    assert isinstance(out, Rejection)
    assert out.reason.startswith("malformed JSON: a number beyond what a 64-bit float holds (over 1.8e+308) "
                                 "at column ")
    assert "set_int_max_str_digits" not in out.reason


def test_a_lone_surrogate_escape_rejects_its_line(tmp_path):
    [out] = read_leads(write(tmp_path, "leads.jsonl", '{"id": "L-1", "title": "\\ud800"}\n'), name="l.jsonl")
    assert out == Rejection("l.jsonl:1", f"malformed JSON: a \\u escape is half of a surrogate pair at column 25; {FIX}")


def test_a_truncated_line_names_the_column_where_it_stops(tmp_path):
    [out] = read_leads(write(tmp_path, "leads.jsonl", '{"id": "L-1", "title": "VP"\n'), name="l.jsonl")
    assert out == Rejection("l.jsonl:1", f"malformed JSON: Expecting ',' delimiter at column 28; {FIX}")


def test_lead_from_dict_refuses_an_infinite_field():
    with pytest.raises(InputError, match=r"x: fields\.score: inf is out of range; a number must lie between"):
        lead_from_dict({"id": "L-1", "fields": {"score": float("inf")}}, "x")


def test_big_integers_within_range_are_kept(tmp_path):
    path = write(tmp_path, "leads.jsonl", '{"id": "L-1", "fields": {"x": 123456789012345678901234567890}}\n')
    [lead] = read_leads(path)
    assert lead.fields["x"] == pytest.approx(1.2345678901234568e29)


def test_csv_invalid_utf8_rejects_only_its_row(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(b"id,title\nL-1,Gesch\xe4ftsf\xfchrer\nL-2,CTO\n")
    out = list(read_leads(path, name="leads.csv"))
    assert out[0] == Rejection("leads.csv:2", "row is not valid UTF-8; save the file as UTF-8 text")
    assert out[1].id == "L-2" and len(out) == 2


def test_csv_utf16_bytes_it_cannot_decode_name_utf16(tmp_path):
    """Excel's "Unicode text" is UTF-16: a file cut in the middle of a character rejects its last row,
    naming the encoding the file was read as (and the fix: UTF-8), the rows before it read."""
    leads = tmp_path / "leads.csv"
    leads.write_bytes("id,title\nL-1,CTO\nL-2,VP\n".encode("utf-16") + b"\x41")
    acts = tmp_path / "acts.csv"
    acts.write_bytes("lead_id,type,at\nL-1,page_view,2026-11-01T00:00:00Z\n".encode("utf-16") + b"\x00")
    out = list(read_leads(leads, activities=acts, name="leads.csv"))
    assert [(lead.id, len(lead.activities)) for lead in out if isinstance(lead, Lead)] == [("L-1", 1), ("L-2", 0)]
    assert [(r.where, r.reason) for r in out if isinstance(r, Rejection)] == [
        ("leads.csv:4", "row is not valid UTF-16; save the file as UTF-8 text"),
        (f"{acts}:3", "row is not valid UTF-16; save the file as UTF-8 text")]


def test_csv_unterminated_quote_names_its_line_and_keeps_the_rows_after_it(tmp_path):
    path = write(tmp_path, "leads.csv", 'id,title\nL-1,"VP Sales\nL-2,CTO\nL-3,"Head of\nOps"\nL-4,Intern\n')
    out = list(read_leads(path, name="leads.csv"))
    # The quote on line 2 never closes: line 4's quote closes line 5's, so that is one row again.
    assert out[0] == Rejection("leads.csv:2", 'a quoted cell opened on this line is never closed; end it with a '
                                              'double quote (a quote inside a cell is written twice: "")')
    assert [(lead.id, lead.title) for lead in out[1:]] == [("L-2", "CTO"), ("L-3", "Head of\nOps"),
                                                           ("L-4", "Intern")]


def test_csv_unterminated_quote_in_the_last_row(tmp_path):
    path = write(tmp_path, "leads.csv", 'id,title\nL-1,CTO\nL-2,"VP\n')
    out = list(read_leads(path, name="leads.csv"))
    assert out[0].id == "L-1"
    assert out[1].where == "leads.csv:3" and "never closed" in out[1].reason


def test_csv_activities_unterminated_quote_and_bad_bytes(tmp_path):
    leads = write(tmp_path, "leads.csv", "id\nL-1\nL-2\n")
    acts = tmp_path / "acts.csv"
    acts.write_bytes(b'lead_id,type,at,properties.url\nL-1,page_view,2026-11-01T00:00:00Z,/\xff\n'
                     b'L-2,page_view,2026-11-01T00:00:00Z,"/a\n')
    out = list(read_leads(leads, activities=acts, name="leads.csv"))
    assert [(r.where, r.reason.split(";")[0]) for r in out if isinstance(r, Rejection)] == [
        (f"{acts}:2", "row is not valid UTF-8"), (f"{acts}:3", "a quoted cell opened on this line is never closed")]


@pytest.mark.parametrize("cell", ["1e400", "-1e999", "1" + "0" * 400, "9" * 5000])
def test_csv_number_beyond_a_double_rejects_its_row(tmp_path, cell):
    path = write(tmp_path, "leads.csv", f"id,fields.x\nL-1,{cell}\nL-2,5\n")
    out = list(read_leads(path, name="leads.csv"))
    assert out[0].where == "leads.csv:2" and out[0].lead_id == "L-1"
    assert out[0].reason.startswith("fields.x: ")
    assert out[0].reason.endswith("is out of range; a number must lie between -1.8e+308 and 1.8e+308 "
                                  "(what a 64-bit float holds)")
    assert out[1].fields == {"x": 5}
