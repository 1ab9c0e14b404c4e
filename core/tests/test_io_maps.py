"""Column maps and CSV dialects: CRM exports as their tools write them, read into leads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadscore.errors import InputError
from leadscore.io import read_leads
from leadscore.io.maps import load_map, parse_map
from leadscore.io.readers import ReadReport, sniff_delimiter
from leadscore.model import Lead, Rejection

REPO = Path(__file__).resolve().parents[2]
X_EDUCATION_MAP = REPO / "rulepacks" / "samples" / "maps" / "x-education.toml"


def _shared_data() -> Path:
    for parent in REPO.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return REPO.parent / "shared" / "data"


X_EDUCATION = _shared_data() / "x-education-leads" / "Leads.csv"

HUBSPOT_EXPORT = (
    "Record ID,First Name,Last Name,Email,Job Title,Company Name,Website URL,Industry,Number of Employees,"
    "Annual Revenue,Country/Region,Lifecycle Stage,Original Source,Create Date,Lead Status,Favourite Colour\n"
    "5101,Dana,Reyes,Dana.Reyes@Quillstone.io,VP Marketing,Quillstone Analytics,https://www.quillstone.io/,"
    "COMPUTER_SOFTWARE,100-500,\"$250,000,000\",United States,marketingqualifiedlead,PAID_SEARCH,"
    "2026-11-02 14:23,IN_PROGRESS,teal\n"
    "5102,Sam,Okafor,sam@larkspur.example,Director of IT,Larkspur Health,larkspur.example,"
    "Hospital & Health Care,1000+,,Germany,Sales Qualified Lead,Organic Search,2026-10-30 09:00,,\n"
)

SALESFORCE_REPORT = (
    '"Lead ID","First Name","Last Name","Title","Company / Account","Email","Lead Source","Industry",'
    '"No. of Employees","Annual Revenue","Country","Lead Status","Created Date","Rating"\n'
    '"00Q5g00000AbCdE","Priya","Natarajan","CFO","Tidewater Ledger","priya@tidewater.example","Web",'
    '"Finance","180","12,500,000","US","Working - Contacted","11/20/2026 10:05 AM","Hot"\n'
)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def leads_of(items: list[Lead | Rejection]) -> dict[str, Lead]:
    assert all(isinstance(item, Lead) for item in items), items
    return {item.id: item for item in items if isinstance(item, Lead)}


def test_a_hubspot_contacts_export_reads_with_the_built_in_map(tmp_path):
    path = write(tmp_path, "contacts.csv", HUBSPOT_EXPORT)
    report = ReadReport()
    leads = leads_of(list(read_leads(path, column_map=load_map("hubspot"), report=report, name="contacts.csv")))
    dana, sam = leads["5101"], leads["5102"]
    assert (dana.email, dana.title, dana.first_name, dana.source) == (
        "dana.reyes@quillstone.io", "VP Marketing", "Dana", "paid_search")
    assert dana.created_at == datetime(2026, 11, 2, 14, 23, tzinfo=UTC)
    assert (dana.company.domain, dana.company.industry, dana.company.employees, dana.company.annual_revenue) == (
        "quillstone.io", "software", 100, 250_000_000)
    assert dana.fields == {"lifecycle_stage": "mql", "lead_status": "in_progress", "favourite_colour": "teal"}
    # Labels as well as codes: the export shows either, depending on the export settings.
    assert (sam.company.industry, sam.company.employees, sam.source) == ("healthcare", 1000, "organic_search")
    assert sam.fields == {"lifecycle_stage": "sql"}
    assert report.warnings == [
        "contacts.csv:1: 1 column kept as custom field: 'Favourite Colour' -> fields.favourite_colour; "
        "map them with --map, or --strict to stop on them"
    ]


def test_a_salesforce_leads_report_reads_with_the_built_in_map(tmp_path):
    path = write(tmp_path, "report.csv", SALESFORCE_REPORT)
    (lead,) = read_leads(path, column_map=load_map("salesforce"))
    assert (lead.id, lead.title, lead.source, lead.company.name) == (
        "00Q5g00000AbCdE", "CFO", "website", "Tidewater Ledger")
    assert (lead.company.employees, lead.company.annual_revenue, lead.company.industry) == (180, 12_500_000, "Finance")
    assert lead.created_at == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    assert lead.fields == {"lead_status": "working_contacted", "rating": "Hot"}


def test_without_a_map_a_crm_export_says_how_to_read_it(tmp_path):
    path = write(tmp_path, "contacts.csv", HUBSPOT_EXPORT)
    with pytest.raises(InputError) as caught:
        list(read_leads(path, name="contacts.csv"))
    assert str(caught.value) == (
        "contacts.csv:1: missing column 'id'; every lead needs a non-empty id such as L-1001; "
        "for a CRM export pass --map hubspot, --map salesforce or --map FILE.toml")


@pytest.mark.parametrize(("separator", "encoding"), [(";", "utf-8"), ("\t", "utf-8"), ("\t", "utf-16"), ("|", "utf-8")])
def test_separators_and_excels_unicode_text_are_detected(tmp_path, separator, encoding):
    text = (f"id{separator}email{separator}title\n"
            f'L-1{separator}a@acme.io{separator}"Head of\nGrowth; EMEA"\n'
            f"L-2{separator}b@acme.io{separator}CTO\n")
    path = write(tmp_path, "leads.csv", text, encoding)
    leads = leads_of(list(read_leads(path)))
    assert leads["L-1"].title == "Head of\nGrowth; EMEA" and leads["L-2"].email == "b@acme.io"


def test_a_delimiter_given_wins_over_detection(tmp_path):
    path = write(tmp_path, "leads.csv", "id;note\nL-1;a,b\n")
    (lead,) = read_leads(path, delimiter=";")
    assert lead.fields == {"note": "a,b"}
    assert sniff_delimiter('"a;b",c,d') == ","


def test_a_map_file_renames_activity_types_reads_dates_and_activity_columns(tmp_path):
    column_map = parse_map(
        '[lead]\nid = "Contact"\nemail = "E-mail"\ncreated_at = "Signed up"\n'
        '[dates]\nformats = ["%d/%m/%Y %H:%M"]\n'
        '[[activities]]\ncolumn = "Demo requested on"\ntype = "demo_request"\n'
        '[activity_columns]\nlead_id = "Contact"\ntype = "What"\nat = "When"\n'
        '[activity_types]\n"Free Trial Signup" = "trial_signup"\n'
        '[constants]\n"company.tier" = "target"\n', "crm.toml")
    leads = write(tmp_path, "leads.csv", "Contact,E-mail,Signed up,Demo requested on\n"
                                         "C-1,a@acme.io,03/11/2026 09:30,20/11/2026 10:00\n")
    acts = write(tmp_path, "acts.csv", "Contact,What,When\nC-1,free_trial_signup,19/11/2026 08:00\n"
                                       "C-1,Free Trial Signup,18/11/2026 08:00\nC-1,page_view,soon\n")
    report = ReadReport()
    (lead,) = read_leads(leads, activities=acts, column_map=column_map, report=report)
    assert lead.created_at == datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    assert lead.company.tier == "target"
    assert [(a.type, a.at.day) for a in lead.activities] == [
        ("trial_signup", 18), ("trial_signup", 19), ("demo_request", 20)]
    assert [r.where for r in report.skipped] == [f"{acts}:4"]
    assert report.skipped[0].reason.startswith("activity left out: at: 'soon' is not a timestamp")


@pytest.mark.parametrize(("text", "message"), [
    ('[lead]\nid = "Id"\nemial = "Email"\n',
     "crm.toml: [lead] unknown lead field 'emial'; did you mean 'email'? use one of: id, email"),
    ('[lead]\nemail = "Email"\n', "crm.toml: [lead] has no id column; name the column that holds the lead id"),
    ('[lead]\nid = "Id"\n[fields]\nscore = { column = "Score", type = "integer" }\n',
     "crm.toml: [fields] score: unknown type 'integer'; use one of: text, number, yes_no, bool, date"),
    ('[leads]\nid = "Id"\n', "crm.toml: unknown table [leads]; use: map, lead, fields"),
    ('[lead]\nid = "Id"\n[dates]\nformats = ["dd/mm/yyyy"]\n', "crm.toml: [dates] formats must be strptime formats"),
])
def test_map_file_errors_name_the_file_and_the_fix(text, message):
    with pytest.raises(InputError) as caught:
        parse_map(text, "crm.toml")
    assert str(caught.value).startswith(message)


def test_a_map_naming_columns_the_file_lacks_lists_them_all(tmp_path):
    column_map = parse_map('[lead]\nid = "Contact"\ntitle = "Job"\n[fields]\nscore = "Score"\n', "crm.toml")
    path = write(tmp_path, "leads.csv", "Contact,Email\nC-1,a@acme.io\n")
    with pytest.raises(InputError) as caught:
        list(read_leads(path, column_map=column_map, name="leads.csv"))
    assert str(caught.value) == (
        "leads.csv:1: map 'crm' names columns the file does not have: 'Job' (title), 'Score' (fields.score); "
        "check the header spelling or fix the map (crm.toml)")


def test_a_bad_cell_of_a_lead_field_rejects_that_lead_with_its_place(tmp_path):
    path = write(tmp_path, "contacts.csv", "Record ID,Number of Employees\n7,lots\n8,12\n")
    out = list(read_leads(path, column_map=load_map("hubspot"), name="contacts.csv"))
    assert out[0] == Rejection("contacts.csv:2", "company.employees: 'lots' is not a number; write digits such as 1200",
                               "7")
    assert out[1].company.employees == 12


def test_a_map_file_reads_headcounts_as_exports_write_them(tmp_path):
    column_map = parse_map('[lead]\nid = "Contact"\n"company.employees" = "Headcount"\n', "crm.toml")
    path = write(tmp_path, "leads.csv", "Contact,Headcount\nC-1,\"1,200\"\nC-2,100-500\nC-3,1000+\nC-4,250\nC-5,12.5\n")
    out = list(read_leads(path, column_map=column_map, name="leads.csv"))
    assert [lead.company.employees for lead in out[:4]] == [1200, 100, 1000, 250]
    assert out[4] == Rejection("leads.csv:6", "company.employees: '12.5' is not a number of employees; write a whole "
                               "number such as 1200", "C-5")


def test_an_unknown_built_in_map_is_one_line():
    with pytest.raises(InputError) as caught:
        load_map("pipedrive")
    assert str(caught.value) == ("--map: no built-in map named 'pipedrive'; use hubspot or salesforce, "
                                 "or the path of a .toml map file")


@pytest.mark.skipif(not X_EDUCATION.is_file(),
                    reason=f"the X Education data are not here ({X_EDUCATION}); they live in ../shared/data beside "
                           "the repository and are never copied into it")
def test_the_raw_x_education_export_loads_with_its_map_alone():
    report = ReadReport()
    items = list(read_leads(X_EDUCATION, column_map=load_map(X_EDUCATION_MAP), strict=True, report=report))
    leads = leads_of(items)
    assert len(leads) == 9240 and report.warnings == [] and report.skipped_count == 0
    first = leads["XE-660737"]
    assert first.source == "Olark Chat" and first.title == "Unemployed"
    # "Select" is the form's default: missing, not a value.
    assert "specialization" not in first.fields and first.fields["do_not_email"] is False
    assert leads["XE-660728"].fields["total_visits"] == 5 and leads["XE-660728"].company.country == "India"
    assert leads["XE-660727"].fields["seconds_on_website"] == 1532
    # The outcome never reaches a lead.
    assert not any("converted" in lead.fields for lead in leads.values())


def test_seen_ids_remembers_every_id_through_growth():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from leadscore.caching import SeenHashes

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.text(max_size=12), max_size=3000))
    def check(ids: list[str]) -> None:
        seen, plain = SeenHashes(), set()
        for lead_id in ids:
            assert seen.add(lead_id) == (lead_id not in plain)
            plain.add(lead_id)

    check()
