"""PS3.15 Table E.1-1 as data, and the action the profile takes for each option."""

import pytest

from medsight.deid.profile import (
    ACTIONS,
    OPTIONS,
    TABLE_E1_1_EDITION,
    TABLE_E3_10_1_EDITION,
    Profile,
    annex_e_table,
    safe_private,
    table_row,
)
from medsight.errors import MedsightError

OPTION_COLUMNS = [column for column, _, _ in OPTIONS.values() if column]
DATES_K_C = {"rtn_long_full_dates": "K", "rtn_long_modif_dates": "C"}
PAT_C_DESC_C = {"rtn_pat_chars": "C", "clean_desc": "C"}


def test_table_loads_with_valid_actions_in_every_column():
    table = annex_e_table()
    assert len(table) >= 450
    for tag, row in table.items():
        assert all(part.rstrip("*") in ACTIONS for part in row["basic"].split("/")), tag
        assert all(row[column] in ("", *ACTIONS) for column in OPTION_COLUMNS), tag
    assert {"X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"} <= {row["basic"] for row in table.values()}


@pytest.mark.parametrize(
    "tag, name, basic, options",
    [  # rows as printed in PS3.15 Table E.1-1, edition 2026d
        ("(0010,0010)", "Patient's Name", "Z", {}),
        ("(0010,0020)", "Patient ID", "Z/D", {}),
        ("(0008,0020)", "Study Date", "Z", {"rtn_long_full_dates": "K", "rtn_long_modif_dates": "C"}),
        ("(0008,0080)", "Institution Name", "X/Z/D", {"rtn_inst_id": "K"}),
        ("(0018,1000)", "Device Serial Number", "X/Z/D", {"rtn_dev_id": "K"}),
        ("(0008,1030)", "Study Description", "X", {"clean_desc": "C"}),
        ("(0020,000D)", "Study Instance UID", "U", {"rtn_uids": "K"}),
        ("(0010,1010)", "Patient's Age", "X", {"rtn_pat_chars": "K"}),
        ("(0040,A730)", "Content Sequence", "D", {"clean_struct_cont": "C"}),
        ("(0008,1140)", "Referenced Image Sequence", "X/Z/U*", {"rtn_uids": "K"}),
        ("(60XX,3000)", "Overlay Data", "X", {"clean_graph": "C"}),
        ("(GGGG,EEEE) where GGGG is odd", "Private Attributes", "X", {"rtn_safe_priv": "C"}),
        # rows of later editions than the table this one replaced (innolitics, about 2021-2022)
        ("(0010,0011)", "Person Names to Use Sequence", "X", {}),
        ("(0008,0055)", "Station AE Title", "X", {"rtn_dev_id": "C"}),
        ("(0008,0012)", "Instance Creation Date", "X/D", DATES_K_C),
        ("(0010,0042)", "Sex Parameters for Clinical Use Category Comment", "X", PAT_C_DESC_C),
        ("(3006,0009)", "Structure Set Time", "Z", DATES_K_C),
    ],
)
def test_known_rows_match_the_standard(tag, name, basic, options):
    row = annex_e_table()[tag]
    assert row["name"] == name and row["basic"] == basic
    assert {c: row[c] for c in OPTION_COLUMNS if row[c]} == options


def test_basic_profile_actions_and_compound_resolution():
    basic = Profile()
    assert basic.action(0x00100010) == "Z"  # Patient's Name
    assert basic.action(0x00080080) == "D"  # Institution Name X/Z/D: least destructive
    assert basic.action(0x00080022) == "Z"  # Acquisition Date X/Z
    assert basic.action(0x00081140) == "U"  # Referenced Image Sequence X/Z/U*
    assert basic.action(0x00081030) == "X"  # Study Description
    assert basic.action(0x00080018) == "U"  # SOP Instance UID
    assert basic.action(0x00280010) == "K"  # Rows: not in the table
    assert basic.dates == "removed"


def test_options_change_the_action():
    assert Profile(frozenset({"retain-institution-identity"})).action(0x00080080) == "K"
    assert Profile(frozenset({"retain-longitudinal-full"})).action(0x00080020) == "K"
    assert Profile(frozenset({"retain-longitudinal-modified"})).action(0x00080020) == "C"
    assert Profile(frozenset({"retain-uids"})).action(0x0020000D) == "K"
    assert Profile(frozenset({"clean-descriptors"})).action(0x00081030) == "C"
    # Referenced Patient Sequence: X, and K with Retain UIDs (2026d; the 2021-2022 table this one
    # replaced had X in that column); its items are still de-identified one by one
    assert Profile().action(0x00081120) == "X"
    assert Profile(frozenset({"retain-uids"})).action(0x00081120) == "K"
    # two options on one row (Allergies: C for both): still C
    assert (
        Profile(frozenset({"retain-patient-characteristics", "clean-descriptors"})).action(0x00102110) == "C"
    )


def test_repeating_groups_and_unlisted_attributes():
    basic, graphics = Profile(), Profile(frozenset({"clean-graphics"}))
    for overlay in (0x60003000, 0x601E3000):
        assert table_row(overlay)["name"] == "Overlay Data"
        assert basic.action(overlay) == "X" and graphics.action(overlay) == "C"
    assert basic.action(0x60024000) == "X" and table_row(0x50100010)["name"] == "Curve Data"
    assert table_row(0x60010010) is None  # odd group: private, not an overlay
    assert basic.action(0x00080012) == "D"  # Instance Creation Date: any date is identifying
    assert Profile(frozenset({"retain-longitudinal-modified"})).action(0x00080012) == "C"
    assert basic.action(0x00080016) == "K"  # SOP Class UID: names a class
    assert basic.action(0x0008010C) == "K"  # Coding Scheme UID
    assert basic.action(0x00200052) == "U"  # Frame of Reference UID
    assert basic.action(0x00020016) == "X"  # Source AE Title: a device's network name
    # Unformatted Text Value is a row of the 2026d table (D; C only under Clean Descriptors)
    assert basic.action(0x00700006) == "D" and graphics.action(0x00700006) == "D"
    assert Profile(frozenset({"clean-graphics", "clean-descriptors"})).action(0x00700006) == "C"
    # Station AE Title: not in the 2021-2022 table; in 2026d X, and C under Retain Device Identity
    assert basic.action(0x00080055) == "X"
    assert Profile(frozenset({"retain-device-identity"})).action(0x00080055) == "C"
    assert basic.action(0x00280000) == "X"  # group length
    assert basic.private_action("ANY", 0x00091010) == "X"
    safe = Profile(frozenset({"retain-safe-private"}))
    assert safe.private_action("ANY", 0x00091010) == "X"
    # Table E.3.10-1 (0019,xx23) GEMS_ACQU_01 Table Speed, wherever the block was reserved
    assert safe.private_action("GEMS_ACQU_01", 0x00191023) == "K"
    assert safe.private_action("GEMS_ACQU_01 ", 0x00191523) == "K"  # padded, block 0x15
    assert basic.private_action("GEMS_ACQU_01", 0x00191023) == "X"


def test_table_e1_1_is_that_of_its_edition():
    from importlib import resources

    text = resources.files("medsight.deid").joinpath("_annex_e.csv").read_text(encoding="utf-8")
    assert TABLE_E1_1_EDITION == "2026d"
    assert f'"Application Level Confidentiality Profile Attributes",\n# edition {TABLE_E1_1_EDITION}.' in text
    assert "e257bc5e1cfecb3156ad3b871c43e6d73581cba6e80df460f4a4a87694e89442" in text  # rows digest
    table = annex_e_table()
    assert len(table) == 657  # every row of the 2026d table, none twice
    assert len([line for line in text.splitlines() if not line.startswith("#")]) == 658


def test_safe_private_table_is_table_e3_10_1_of_its_edition():
    from importlib import resources

    text = resources.files("medsight.deid").joinpath("_safe_private.csv").read_text(encoding="utf-8")
    assert f'Table E.3.10-1 "Safe Private Attributes", edition {TABLE_E3_10_1_EDITION}' in text
    table = safe_private()
    assert len(table) == 479  # every row of the 2026d table, none twice
    assert ("Philips PET Private Group", 0x7053, 0x00) in table and ("NQRight", 0x0299, 0x16) in table
    assert all(group % 2 and 0 <= offset <= 0xFF for _, group, offset in table)


def test_codes_follow_cid_7050():
    codes = Profile(frozenset({"clean-pixel-data", "retain-uids"})).codes()
    assert codes[0] == ("113100", "Basic Application Confidentiality Profile")
    assert ("113101", "Clean Pixel Data Option") in codes and ("113110", "Retain UIDs Option") in codes
    assert all(
        len(meaning) <= 64
        for _, meaning in Profile(frozenset(OPTIONS) - {"retain-longitudinal-full"}).codes()
    )


def test_bad_options_are_refused_clearly():
    with pytest.raises(MedsightError, match="Did you mean 'retain-uids'"):
        Profile(frozenset({"retain-uid"}))
    with pytest.raises(MedsightError, match="exclude each other"):
        Profile(frozenset({"retain-longitudinal-full", "retain-longitudinal-modified"}))
