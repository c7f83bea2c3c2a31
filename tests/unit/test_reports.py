"""Audit reports: localised tables, machine-stable CSV and JSON, proof references."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from hub.audit.reports import (
    DISCLOSURE_COLUMNS,
    RECIPIENT_COLUMNS,
    DisclosureRow,
    Lang,
    RecipientRow,
    ReportScope,
    proof_reference,
    render_correction_list,
    render_disclosures,
)

T0 = datetime(2026, 11, 22, 14, 3, 5, 250_000, tzinfo=UTC)
REVISION = "ab12" + "c" * 60


def disclosure(**overrides: Any) -> DisclosureRow:
    values: dict[str, Any] = {
        "decided_at": T0,
        "event_type": "AddressChanged",
        "event": "bc-msp/ev-1",
        "recipient": "cra-individual",
        "outcome": "disclosed",
        "reason": "consent_given",
        "fields": ("street", "city"),
        "consent_revision": REVISION,
        "delivery": "delivered",
        "delivered_at": T0 + timedelta(seconds=3),
        "leaf_index": 41,
        "checkpoint_size": 64,
    } | overrides
    return DisclosureRow(**values)


WITHHELD = disclosure(
    event="bc-msp/ev-2",
    recipient="bc-icbc",
    outcome="withheld",
    reason="consent_withdrawn",
    fields=(),
    consent_revision=None,
    delivery="not_sent",
    delivered_at=None,
    leaf_index=42,
    checkpoint_size=None,
)
ROWS = [disclosure(), WITHHELD]
SCOPE = ReportScope(
    person="person 1a2b3c4d",
    recipient=None,
    since=T0 - timedelta(days=730),
    until=None,
    generated_at=T0,
    checkpoint="tree size 64, root ab12…, key ed25519:k1",
)
RECIPIENTS = [
    RecipientRow(
        recipient="cra-individual",
        recipient_name="Canada Revenue Agency — individual tax",
        jurisdiction="Government of Canada",
        disclosures=3,
        first_disclosed_at=T0 - timedelta(days=100),
        last_disclosed_at=T0,
        event_types=("AddressChanged", "NameChanged"),
    )
]


def test_french_table_has_french_headings_and_labels_only() -> None:
    """With lang fr the table's headings, scope lines, labels and totals are French, not English."""
    text = render_disclosures(ROWS, SCOPE, "table", "fr")
    for french in ("Date de la décision", "Type d'événement", "Destinataire", "Résultat", "Motif"):
        assert french in text
    for french in ("Champs communiqués", "Révision du consentement", "État de la livraison"):
        assert french in text
    for french in ("Preuve d'inclusion", "communiqué", "consentement retiré", "non envoyé"):
        assert french in text
    assert "Personne : person 1a2b3c4d" in text
    assert text.rstrip().endswith("1 communiqué, 1 retenu")
    for english in ("Decided at", "Event type", "Recipient", "Outcome", "Reason", "Delivery"):
        assert english not in text


def test_english_table_has_english_headings_only() -> None:
    """With lang en the table is English and carries none of the French headings."""
    text = render_disclosures(ROWS, SCOPE, "table", "en")
    assert "Decided at" in text
    assert "Inclusion proof" in text
    assert "Date de la décision" not in text
    assert text.rstrip().endswith("1 disclosed, 1 withheld")


def test_table_shortens_hashes_and_prints_utc_seconds() -> None:
    """The table shows 12 hash characters and an ellipsis, and times as UTC to the second."""
    eastern = timezone(timedelta(hours=-5))
    row = disclosure(decided_at=datetime(2026, 11, 22, 9, 3, 5, 999_999, tzinfo=eastern))
    text = render_disclosures([row], SCOPE, "table", "en")
    assert f"{REVISION[:12]}…" in text
    assert REVISION not in text
    assert "2026-11-22T14:03:05Z" in text
    assert "street, city" in text


def test_table_columns_are_aligned() -> None:
    """Every table column starts at the same offset on the header and each data line."""
    lines = render_disclosures(ROWS, SCOPE, "table", "en").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Decided at"))
    table = lines[header : header + 4]
    assert lines[header + 1].startswith("-" * len("2026-11-22T14:03:05Z") + "  ")
    offsets = {line.index("cra-individual" if "cra" in line else "bc-icbc") for line in table[2:]}
    assert offsets == {table[0].index("Recipient")}


def test_csv_parses_back_with_full_hashes() -> None:
    """CSV parses with DictReader: one row per input row, full hashes, codes, leaf columns."""
    text = render_disclosures(ROWS, SCOPE, "csv", "en")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(ROWS)
    assert rows[0]["Consent revision"] == REVISION
    assert rows[0]["Fields disclosed"] == "street;city"
    assert rows[0]["Decided at"] == "2026-11-22T14:03:05.250000Z"
    assert rows[0]["Leaf index"] == "41"
    assert rows[0]["Checkpoint size"] == "64"
    assert rows[0]["Inclusion proof"] == "leaf 41 @ checkpoint 64"


def test_csv_keeps_machine_codes_and_localises_headings_in_french() -> None:
    """French CSV has French headings but the same machine codes as English CSV."""
    rows = list(csv.DictReader(io.StringIO(render_disclosures(ROWS, SCOPE, "csv", "fr"))))
    assert rows[1]["Résultat"] == "withheld"
    assert rows[1]["Motif"] == "consent_withdrawn"
    assert rows[1]["État de la livraison"] == "not_sent"
    assert rows[1]["Taille du point de contrôle"] == ""


@pytest.mark.parametrize("event", ["bc-msp/ev,1", 'bc-msp/"quoted"', 'bc-msp/a,"b",\nc'])
def test_csv_round_trips_commas_quotes_and_newlines(event: str) -> None:
    """An event id holding a comma, quote or newline comes back unchanged through CSV."""
    text = render_disclosures([disclosure(event=event)], SCOPE, "csv", "en")
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["Event"] == event


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_json_keys_are_stable_across_languages(lang: Lang) -> None:
    """JSON has the same English snake_case keys and machine codes in both languages."""
    document = json.loads(render_disclosures(ROWS, SCOPE, "json", lang))
    assert set(document) == {"scope", "rows", "totals", "lang", "labels"}
    assert document["lang"] == lang
    assert list(document["scope"]) == [
        "person", "recipient", "since", "until", "generated_at", "checkpoint",
    ]  # fmt: skip
    assert [list(row) for row in document["rows"]] == [list(DISCLOSURE_COLUMNS)] * 2
    assert list(document["labels"]) == list(DISCLOSURE_COLUMNS)
    assert document["totals"] == {"rows": 2, "disclosed": 1, "withheld": 1}
    first, second = document["rows"]
    assert first["consent_revision"] == REVISION
    assert first["fields"] == ["street", "city"]
    assert first["decided_at"] == "2026-11-22T14:03:05.250000Z"
    assert document["scope"]["until"] is None
    assert (second["outcome"], second["reason"], second["delivery"]) == (
        "withheld", "consent_withdrawn", "not_sent",
    )  # fmt: skip


def test_json_labels_follow_the_language() -> None:
    """The JSON labels object maps each key to the heading in the chosen language."""
    english = json.loads(render_disclosures(ROWS, SCOPE, "json", "en"))["labels"]
    french = json.loads(render_disclosures(ROWS, SCOPE, "json", "fr"))["labels"]
    assert english["delivery"] == "Delivery status"
    assert french["delivery"] == "État de la livraison"


def test_withheld_row_shows_reason_and_not_sent() -> None:
    """A withheld row shows its reason and that nothing was sent, in every format."""
    table = render_disclosures([WITHHELD], SCOPE, "table", "en")
    assert "withheld" in table
    assert "consent withdrawn" in table
    assert "not sent" in table
    assert "leaf 42 (not yet signed)" in table
    (row,) = json.loads(render_disclosures([WITHHELD], SCOPE, "json", "en"))["rows"]
    assert (row["reason"], row["delivery"], row["fields"]) == ("consent_withdrawn", "not_sent", [])


def test_unknown_codes_fall_back_to_the_code() -> None:
    """Codes the report has no label for are shown as themselves instead of failing."""
    row = disclosure(outcome="quarantined", reason="new_rule", delivery="bounced")
    text = render_disclosures([row], SCOPE, "table", "fr")
    assert "quarantined" in text
    assert "new_rule" in text
    assert "bounced" in text


def test_table_neutralises_control_characters() -> None:
    """Terminal escapes and newlines in a publisher's event id cannot reach the table."""
    text = render_disclosures([disclosure(event="x/\x1b[2J\nfake")], SCOPE, "table", "en")
    assert "\x1b" not in text
    assert "x/?[2J?fake" in text


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("en", "no disclosures or withholdings recorded for this scope"),
        ("fr", "aucune communication ni retenue consignée pour cette portée"),
    ],
)
def test_empty_report_gives_localised_message(lang: Lang, message: str) -> None:
    """No rows prints the scope then the localised 'nothing recorded' message."""
    text = render_disclosures([], SCOPE, "table", lang)
    assert text.rstrip().endswith(message)
    assert "person 1a2b3c4d" in text


def test_empty_csv_and_json_have_headers_and_no_rows() -> None:
    """No rows still gives a CSV header row and a JSON document with an empty list."""
    assert list(csv.DictReader(io.StringIO(render_disclosures([], SCOPE, "csv", "en")))) == []
    document = json.loads(render_disclosures([], SCOPE, "json", "fr"))
    assert document["rows"] == []
    assert document["totals"] == {"rows": 0, "disclosed": 0, "withheld": 0}


@pytest.mark.parametrize(
    ("lang", "size", "expected"),
    [
        ("en", 64, "leaf 41 @ checkpoint 64"),
        ("en", None, "leaf 41 (not yet signed)"),
        ("fr", 64, "feuille 41 @ point de contrôle 64"),
        ("fr", None, "feuille 41 (pas encore signée)"),
    ],
)
def test_proof_reference(lang: Lang, size: int | None, expected: str) -> None:
    """The proof reference names the leaf and its checkpoint, or says it is not yet signed."""
    assert proof_reference(41, size, lang) == expected


def test_proof_reference_defaults_to_english() -> None:
    """Called with the two positional arguments, the proof reference is English."""
    assert proof_reference(7, None) == "leaf 7 (not yet signed)"


def test_correction_list_table_in_french() -> None:
    """The correction list table names each program, its counts and French totals."""
    text = render_correction_list(RECIPIENTS, SCOPE, "table", "fr")
    assert text.startswith("Liste pour correction")
    assert "Canada Revenue Agency — individual tax" in text
    assert "changement d'adresse, changement de nom" in text
    assert text.rstrip().endswith("1 programme, 3 communications")


def test_correction_list_csv_and_json_keep_codes() -> None:
    """The correction list exports keep event type codes and stable keys."""
    (row,) = csv.DictReader(io.StringIO(render_correction_list(RECIPIENTS, SCOPE, "csv", "en")))
    assert row["Event types"] == "AddressChanged;NameChanged"
    assert row["Disclosures"] == "3"
    document = json.loads(render_correction_list(RECIPIENTS, SCOPE, "json", "fr"))
    assert list(document["rows"][0]) == list(RECIPIENT_COLUMNS)
    assert document["rows"][0]["event_types"] == ["AddressChanged", "NameChanged"]
    assert document["totals"] == {"recipients": 1, "disclosures": 3}


def test_empty_correction_list_message() -> None:
    """An empty correction list says no program received personal information."""
    text = render_correction_list([], SCOPE, "table", "en")
    assert text.rstrip().endswith("no program received personal information for this scope")


def test_unknown_format_is_refused() -> None:
    """A format outside table, csv and json raises a ValueError naming the choices."""
    with pytest.raises(ValueError, match="use table, csv or json"):
        render_disclosures(ROWS, SCOPE, "xml", "en")  # type: ignore[arg-type]
