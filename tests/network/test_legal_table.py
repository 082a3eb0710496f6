"""番号法 別表第二 as data: every row accounted for, every agency group resolved, find() exact."""

from __future__ import annotations

import csv
import io
from collections import Counter
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynumber.network.interfaces import LegalTable
from mynumber.network.legal_table import (
    LegalTableData,
    LegalTableDataError,
    build_directory,
    load_legal_table,
    parse_legal_table,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = resources.files("mynumber.network") / "data"
SHARED_SOURCE = ROOT.parent / "shared" / "design" / "data" / "bekkyo2-2015.csv"
MUNICIPALITIES = ROOT / "src" / "mynumber" / "registry" / "data" / "municipalities.csv"
MAYORS = {"designated_city_mayor", "health_center_city_mayor", "atomic_bomb_city_mayor",
          "city_mayor", "special_ward_mayor", "town_village_mayor"}

TABLE = load_legal_table()


def data_text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def table_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data_text("legal_table.csv"))))


def parse_with(table_csv: str | None = None, items_csv: str | None = None) -> LegalTableData:
    return parse_legal_table(
        table_csv if table_csv is not None else data_text("legal_table.csv"),
        data_text("agency_kinds.csv"), data_text("agency_groups.csv"),
        items_csv if items_csv is not None else data_text("items.csv"),
        data_text("additional_provisions.csv"),
    )


@pytest.fixture(scope="module")
def directory():
    with MUNICIPALITIES.open(encoding="utf-8") as f:
        municipalities = [SimpleNamespace(**row) for row in csv.DictReader(f)]
    return municipalities, build_directory(municipalities)


# -- the law, as read ---------------------------------------------------------------------

@pytest.mark.skipif(not SHARED_SOURCE.exists(), reason="the design folder is not checked out")
def test_the_shipped_table_is_the_reviewed_source_byte_for_byte():
    assert (DATA / "legal_table.csv").read_bytes() == SHARED_SOURCE.read_bytes()


def test_all_260_rows_are_accounted_for():
    rows = table_rows()
    assert len(rows) == 260 == TABLE.rows_read
    bekkyo = [p for p in TABLE.provisions() if p.provision_id.startswith("bekkyo2-")]
    # Every row is a provision, except the one row of the deleted item 36.
    assert len(bekkyo) + len(TABLE.deleted_task_ids) == 260
    assert TABLE.deleted_task_ids == {"bekkyo2-36"}
    assert not [p for p in bekkyo if p.task_id == "bekkyo2-36"]
    # Row n of item i is provision bekkyo2-i-n and carries that row's own texts.
    counter: Counter[str] = Counter()
    for row in rows:
        if row["requester"] == "削除":
            continue
        counter[row["item"]] += 1
        p = TABLE.provision(f"bekkyo2-{row['item']}-{counter[row['item']]}")
        assert (p.requester_text, p.provider_text, p.information_text, p.source) == (
            row["requester"], row["provider"], row["information"], row["source"])
        assert p.task_id == f"bekkyo2-{row['item']}"
    tasks = {t.task_id: t for t in TABLE.tasks()}
    assert len([t for t in tasks if t.startswith("bekkyo2-")]) == 121
    assert tasks["bekkyo2-36"].title == "削除"
    assert tasks["bekkyo2-56-2"].item_no == "56-2"
    assert TABLE.provision("bekkyo2-56-2-1").legal_reference == "番号法別表第二 第56の2項"
    assert TABLE.provision("bekkyo2-1-1").legal_reference == "番号法別表第二 第1項"


def test_legal_table_data_satisfies_the_protocol():
    table: LegalTable = TABLE  # mypy checks the structural match
    assert table.find("nobody", "bekkyo2-1", "city_mayor", "local_tax") is None
    assert load_legal_table() is TABLE  # cached


def test_every_requester_and_provider_text_is_resolved():
    groups = TABLE.groups
    texts = {r[c] for r in table_rows() for c in ("requester", "provider")} - {"削除", ""}
    assert texts == set(groups)  # none unresolved, none left over
    kinds = TABLE.agency_kinds()
    for text, resolved in groups.items():
        assert resolved and resolved <= set(kinds), text


def test_an_unknown_agency_text_fails_loudly_at_load():
    original = data_text("legal_table.csv")
    changed = original.replace("\n1,厚生労働大臣,", "\n1,厚生労働大臣又は内閣総理大臣,", 1)
    assert changed != original
    with pytest.raises(LegalTableDataError, match=r"not in agency_groups\.csv"):
        parse_with(table_csv=changed)


def test_an_unknown_information_text_fails_loudly_at_load():
    original = data_text("legal_table.csv")
    changed = original.replace(",医療保険給付関係情報,", ",医療保険給付関係情報又は新しい情報,", 1)
    assert changed != original
    with pytest.raises(LegalTableDataError, match=r"not in items\.csv"):
        parse_with(table_csv=changed)


def test_a_dropped_deleted_row_marker_is_not_silently_accepted():
    original = data_text("legal_table.csv")
    changed = original.replace("\n36,削除,", "\n36,存在しない機関,", 1)
    with pytest.raises(LegalTableDataError):
        parse_with(table_csv=changed)


def test_defined_term_lists_split_into_one_item_per_term_and_other_text_is_one_item():
    p = TABLE.provision("bekkyo2-1-2")
    assert p.items == ("local_tax", "resident_record", "long_term_care")
    assert TABLE.provision("bekkyo2-1-1").items == ("medical_insurance",)
    # A list mixing defined terms and other wording stays one item of its own.
    mixed = [p for p in TABLE.provisions()
             if p.information_text.startswith("児童福祉法による障害児通所支援に関する情報、地方税")]
    assert mixed and all(len(p.items) == 1 for p in mixed)
    assert mixed[0].items == ("disabled_child_day_support_tax_resident_or_self_support",)
    labels = {i.code: i.label for i in TABLE.items()}
    assert labels["china_returnee_support"] == "中国残留邦人等支援給付等関係情報"
    assert labels["job_training_benefit"] == "職業訓練受講給付金関係情報"


# -- spot checks of real rows ---------------------------------------------------------------

def test_item_1_mhlw_may_ask_municipal_mayors_for_local_tax():
    for mayor in MAYORS:
        found = TABLE.find("mhlw_minister", "bekkyo2-1", mayor, "local_tax")
        assert found is not None and found.provision_id == "bekkyo2-1-2"
    # ... but not the governor, and not for an item that row does not name.
    assert TABLE.find("mhlw_minister", "bekkyo2-1", "prefectural_governor", "local_tax") is None
    assert TABLE.find("mhlw_minister", "bekkyo2-1", "city_mayor", "public_assistance") is None
    # ... and not under another item's task.
    assert TABLE.find("mhlw_minister", "bekkyo2-2", "city_mayor", "local_tax") is None


def test_medical_insurers_group():
    covered = TABLE.groups["医療保険者又は後期高齢者医療広域連合"]
    assert {"kyokai_kenpo", "health_insurance_society", "national_health_insurance_society",
            "private_school_mutual_aid", "national_public_servant_mutual_aid",
            "local_public_servant_mutual_aid", "late_elderly_medical_union"} | MAYORS == covered
    found = TABLE.find("kyokai_kenpo", "bekkyo2-2", "national_health_insurance_society",
                       "medical_insurance")
    assert found is not None and found.provision_id == "bekkyo2-2-1"


def test_agency_group_resolutions():
    g = TABLE.groups
    assert g["都道府県知事等"] == {"prefectural_governor", "special_ward_mayor"} | (
        MAYORS - {"special_ward_mayor", "town_village_mayor"})
    assert g["共済組合等"] == {"private_school_mutual_aid",
                              "national_public_servant_mutual_aid_federation",
                              "local_public_servant_mutual_aid",
                              "municipal_staff_mutual_aid_federation"}
    assert g["都道府県知事又は広島市長若しくは長崎市長"] == {"prefectural_governor",
                                                        "atomic_bomb_city_mayor"}
    pension_payers = g["国民年金法その他の法令による年金である給付の支給を行うこととされている者"]
    assert {"mhlw_minister", "japan_pension_service", "agri_mutual_aid"} <= pension_payers
    assert "city_mayor" not in pension_payers
    # Only 広島市 and 長崎市 may run items 89-90; an ordinary city may not.
    assert TABLE.find("atomic_bomb_city_mayor", "bekkyo2-89", "city_mayor", "resident_record")
    assert TABLE.find("city_mayor", "bekkyo2-89", "city_mayor", "resident_record") is None


def test_the_criminal_investigation_provision_is_restricted():
    p = TABLE.find("prefectural_police", "extra-criminal-investigation", "city_mayor",
                   "resident_record")
    assert p is not None and p.restricted and p.provision_id.startswith("extra-")
    assert TABLE.find("prefectural_police", "extra-criminal-investigation",
                      "town_village_mayor", "local_tax") == p
    assert TABLE.find("prefectural_police", "extra-criminal-investigation",
                      "city_mayor", "pension") is None
    assert TABLE.find("prefectural_police", "extra-criminal-investigation",
                      "mhlw_minister", "local_tax") is None
    assert not [q for q in TABLE.provisions() if q.restricted and q is not p]


def test_the_portal_may_ask_any_provider_for_any_item_but_nobody_else_may_use_its_task():
    task = "extra-portal-self-information"
    kinds = set(TABLE.agency_kinds()) - {"portal"}
    for kind in kinds:
        for item in ("local_tax", "pension", "national_pension_fund_member"):
            p = TABLE.find("portal", task, kind, item)
            assert p is not None and not p.restricted
    assert TABLE.find("portal", task, "city_mayor", "no_such_item") is None
    assert TABLE.find("portal", task, "no_such_kind", "local_tax") is None
    assert TABLE.find("portal", task, "portal", "local_tax") is None
    assert TABLE.find("city_mayor", task, "city_mayor", "local_tax") is None
    assert TABLE.find("portal", "bekkyo2-1", "city_mayor", "local_tax") is None


# -- find() against the permitted set --------------------------------------------------------

PERMITTED = TABLE.permitted_combinations()
REQUESTERS = sorted({c[0] for c in PERMITTED} | {"no_such_kind"})
TASK_IDS = sorted(t.task_id for t in TABLE.tasks())
PROVIDERS = sorted(set(TABLE.agency_kinds()) | {"no_such_kind"})
ITEMS = sorted({i.code for i in TABLE.items()} | {"no_such_item"})


def covers(provision_id: str, combo: tuple[str, str, str, str]) -> bool:
    """Does the source row behind this provision say so? (independent of find's index)"""
    p = TABLE.provision(provision_id)
    rk, task_id, pk, item = combo
    groups = TABLE.groups
    if provision_id.startswith("bekkyo2-"):
        return (task_id == p.task_id and rk in groups[p.requester_text]
                and pk in groups[p.provider_text] and item in p.items)
    return combo in set(TABLE.expand(p))


def test_every_permitted_combination_is_found_with_a_provision_that_permits_it():
    assert len(PERMITTED) > 5_000
    for combo in PERMITTED:
        found = TABLE.find(*combo)
        assert found is not None, combo
        assert covers(found.provision_id, combo), (combo, found.provision_id)


@settings(max_examples=3_000, deadline=None)
@given(st.sampled_from(REQUESTERS), st.sampled_from(TASK_IDS), st.sampled_from(PROVIDERS),
       st.sampled_from(ITEMS))
def test_find_is_exactly_the_permitted_set(requester, task_id, provider, item):
    combo = (requester, task_id, provider, item)
    found = TABLE.find(*combo)
    if combo in PERMITTED:
        assert found is not None and covers(found.provision_id, combo)
    else:
        assert found is None
        # Cross-check against the rows themselves: no row of this task says so.
        assert not any(covers(p.provision_id, combo) for p in TABLE.provisions()
                       if p.task_id == task_id)


# -- the directory ----------------------------------------------------------------------------

def test_directory_ids_and_numbers_are_unique_and_32_bit(directory):
    _, specs = directory
    assert len({s.agency_id for s in specs}) == len(specs)
    assert len({s.number for s in specs}) == len(specs)
    assert all(0 < s.number < 2**32 for s in specs)


def test_every_kind_any_provision_uses_has_a_concrete_agency(directory):
    _, specs = directory
    present = {s.kind for s in specs}
    assert TABLE.kinds_used() - present == set()
    assert set(TABLE.agency_kinds()) == present  # no kind without an agency, none unknown


def test_directory_shape(directory):
    municipalities, specs = directory
    by_id = {s.agency_id: s for s in specs}
    count = Counter(m.kind for m in municipalities)
    mayors = [s for s in specs if s.kind in MAYORS]
    assert len(mayors) == sum(count[k] for k in
                              ("designated_city", "city", "special_ward", "town", "village"))
    assert len([s for s in specs if s.kind == "prefectural_governor"]) == 47
    # 行政区 of 指定都市 are not agencies: 札幌市中央区 (011011) is not, 札幌市 (011002) is.
    assert "municipality-011011" not in by_id
    assert by_id["municipality-011002"].kind == "designated_city_mayor"
    assert by_id["municipality-131041"].kind == "special_ward_mayor"
    assert by_id["municipality-131041"].municipality_code == "131041"
    assert by_id["municipality-131041-boe"].kind == "municipal_board_of_education"
    assert by_id["municipality-341002"].kind == "atomic_bomb_city_mayor"  # 広島市
    assert by_id["municipality-422011"].kind == "atomic_bomb_city_mayor"  # 長崎市
    assert by_id["municipality-012025"].kind == "health_center_city_mayor"  # 函館市
    assert by_id["prefecture-13"].name == "東京都知事"
    assert by_id["prefecture-13-police"].name == "警視庁"
    assert by_id["prefecture-01-police"].kind == "prefectural_police"
    assert by_id["prefecture-13-elderly-medical-union"].kind == "late_elderly_medical_union"
    assert by_id["mhlw"].number == 1 and by_id["mhlw"].kind == "mhlw_minister"
    assert by_id["mynaportal"].kind == "portal"
    assert by_id["japan_pension_service"].kind == "japan_pension_service"
    # Numbers follow the documented ranges.
    assert by_id["prefecture-13-police"].number == 10_000 + 13 * 10 + 2
    assert by_id["municipality-131041-boe"].number == 100_000_000 + 131041 * 10 + 1


def test_directory_is_stable_and_rejects_unknown_municipality_kinds(directory):
    municipalities, specs = directory
    assert build_directory(municipalities) == specs
    bad = [SimpleNamespace(code="999999", prefecture="x", name="y", kind="county")]
    with pytest.raises(LegalTableDataError):
        build_directory(bad)


def test_special_cities_match_the_municipality_list():
    with MUNICIPALITIES.open(encoding="utf-8") as f:
        known = {r["code"]: r for r in csv.DictReader(f)}
    rows = list(csv.DictReader(io.StringIO(data_text("special_cities.csv"))))
    assert rows
    for row in rows:
        m = known[row["code"]]
        assert (m["prefecture"], m["name"]) == (row["prefecture"], row["name"])
        assert m["kind"] in ("city", "designated_city")
