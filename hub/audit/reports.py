"""Privacy-officer reports: who received what about a person, and the correction list.

Pure rendering for ``tellonce audit report``: rows in, text out, as a ``table`` for people or
``csv`` / ``json`` for spreadsheets and scripts, in English or French. No database, no I/O.

Why codes stay stable and only labels are localised: the table is read by a person, so its
headings, scope lines, outcome/reason/delivery labels and messages follow ``lang``. CSV and JSON
are filtered by machines (``outcome == "withheld"``), so whatever the language they carry the
machine codes (``disclosed``, ``consent_given``, ``dead_lettered``), full consent hashes and
ISO 8601 UTC times with ``Z``. A French and an English export of one scope differ only in the
CSV header row, the JSON ``labels`` object and the prose ``proof`` column (``leaf_index`` and
``checkpoint_size`` are its machine form). JSON keys are always the English snake_case names
of ``DISCLOSURE_COLUMNS`` / ``RECIPIENT_COLUMNS`` and of the scope, so one script reads both.
Unknown codes are shown as themselves, never rejected: a report must not fail on new data.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Literal

from hub.model import Checkpoint, as_utc

Lang = Literal["en", "fr"]
Format = Literal["table", "csv", "json"]


@dataclass(frozen=True, slots=True)
class DisclosureRow:
    """One decision about one recipient for one event, with its delivery and audit leaf."""

    decided_at: datetime
    event_type: str  # AddressChanged | DeathReported | NameChanged
    event: str  # "<source>/h:<keyed hash of its ce_id>", as its audit leaf names it
    recipient: str  # program id
    outcome: str  # disclosed | withheld
    reason: str  # consent_given | no_consent | consent_withdrawn | ... (see _LABELS)
    fields: tuple[str, ...]  # names of the fields disclosed, never values; empty when withheld
    consent_revision: str | None  # hash of the consent revision relied on
    delivery: str  # delivered | pending | failed | dead_lettered | not_sent
    delivered_at: datetime | None
    leaf_index: int  # audit-log leaf recording this decision
    checkpoint_size: int | None  # smallest signed checkpoint covering the leaf; None: unsigned
    # The event's person was erased since (``tellonce person erase``): the row is all that is
    # left of the disclosure, and it never held a personal value.
    erased: bool = False


@dataclass(frozen=True, slots=True)
class RecipientRow:
    """One line of the correction list: a program that received the person's data."""

    recipient: str
    recipient_name: str
    jurisdiction: str
    disclosures: int
    first_disclosed_at: datetime
    last_disclosed_at: datetime
    event_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What was asked. ``person`` is the caller's pseudonymous handle, never a local id."""

    person: str | None
    recipient: str | None
    since: datetime | None
    until: datetime | None
    generated_at: datetime
    checkpoint: str | None  # formatted by the caller


DISCLOSURE_COLUMNS = (*(f.name for f in fields(DisclosureRow)), "proof")
RECIPIENT_COLUMNS = tuple(f.name for f in fields(RecipientRow))
_TABLE_HIDDEN = frozenset({"leaf_index", "checkpoint_size"})  # the table shows "proof"
_ABSENT = {"since": "open", "until": "open", "checkpoint": "none"}  # scope value when None
_LANG = {"en": 0, "fr": 1}

# Column headings (CSV header, JSON "labels", table header), by key: (English, French).
_HEADINGS = {
    "decided_at": ("Decided at", "Date de la décision"),
    "event_type": ("Event type", "Type d'événement"),
    "event": ("Event", "Événement"),
    "recipient": ("Recipient", "Destinataire"),
    "outcome": ("Outcome", "Résultat"),
    "reason": ("Reason", "Motif"),
    "fields": ("Fields disclosed", "Champs communiqués"),
    "consent_revision": ("Consent revision", "Révision du consentement"),
    "delivery": ("Delivery status", "État de la livraison"),
    "delivered_at": ("Delivered at", "Date de livraison"),
    "leaf_index": ("Leaf index", "Indice de la feuille"),
    "checkpoint_size": ("Checkpoint size", "Taille du point de contrôle"),
    "erased": ("Person erased", "Personne effacée"),
    "proof": ("Inclusion proof", "Preuve d'inclusion"),
    "recipient_name": ("Program", "Programme"),
    "jurisdiction": ("Jurisdiction", "Administration"),
    "disclosures": ("Disclosures", "Communications"),
    "first_disclosed_at": ("First disclosure", "Première communication"),
    "last_disclosed_at": ("Last disclosure", "Dernière communication"),
    "event_types": ("Event types", "Types d'événement"),
}
# Labels for machine codes, used in the table only; an unknown code is shown as itself.
_LABELS = {
    "disclosed": ("disclosed", "communiqué"),
    "withheld": ("withheld", "retenu"),
    "consent_given": ("consent given", "consentement donné"),
    "no_consent": ("no consent", "aucun consentement"),
    "consent_withdrawn": ("consent withdrawn", "consentement retiré"),
    "consent_expired": ("consent expired", "consentement expiré"),
    "no_identity_link": ("no identity link", "aucun lien d'identité"),
    "subject_not_linked": ("client not linked", "client non lié"),
    "erased": ("client erased", "client effacé"),
    "delivered": ("delivered", "livré"),
    "pending": ("pending", "en attente"),
    "failed": ("failed", "échec"),
    "dead_lettered": ("dead-lettered", "mis en lettre morte"),
    "not_sent": ("not sent", "non envoyé"),
    "AddressChanged": ("address changed", "changement d'adresse"),
    "DeathReported": ("death reported", "décès signalé"),
    "NameChanged": ("name changed", "changement de nom"),
}
_CODED = frozenset({"outcome", "reason", "delivery", "event_type", "event_types"})
_TEXT = {
    "disclosures": ("Disclosures and withholdings", "Communications et retenues"),
    "recipients": (
        "Correction list: programs that received personal information",
        "Liste pour correction : programmes ayant reçu des renseignements personnels",
    ),
    "person": ("Person", "Personne"),
    "recipient": ("Recipient", "Destinataire"),
    "since": ("Since", "Du"),
    "until": ("Until", "Au"),
    "generated_at": ("Generated", "Produit le"),
    "checkpoint": ("Checkpoint", "Point de contrôle"),
    "sep": (": ", " : "),  # French typography puts a space before the colon
    "any": ("(any)", "(tous)"),
    "open": ("(no limit)", "(sans limite)"),
    "none": ("(none)", "(aucun)"),
    "no_disclosures": (
        "no disclosures or withholdings recorded for this scope",
        "aucune communication ni retenue consignée pour cette portée",
    ),
    "no_recipients": (
        "no program received personal information for this scope",
        "aucun programme n'a reçu de renseignements personnels pour cette portée",
    ),
    "signed": ("leaf {leaf} @ checkpoint {size}", "feuille {leaf} @ point de contrôle {size}"),
    "unsigned": ("leaf {leaf} (not yet signed)", "feuille {leaf} (pas encore signée)"),
    "yes": ("yes", "oui"),
}


def checkpoint_line(checkpoint: Checkpoint) -> str:
    """One signed checkpoint as reports and ``tellonce audit checkpoint`` name it."""
    return (
        f"checkpoint {checkpoint.seq}: tree size {checkpoint.size}, root {checkpoint.root[:16]}…, "
        f"key {checkpoint.key_id}, {checkpoint.issued_at:%Y-%m-%dT%H:%M:%SZ}"
    )


def proof_reference(leaf_index: int, checkpoint_size: int | None, lang: Lang = "en") -> str:
    """Where the inclusion proof is: "leaf 41 @ checkpoint 64" / "leaf 41 (not yet signed)"."""
    key = "unsigned" if checkpoint_size is None else "signed"
    return _TEXT[key][_LANG[lang]].format(leaf=leaf_index, size=checkpoint_size)


def render_disclosures(
    rows: Sequence[DisclosureRow], scope: ReportScope, fmt: Format, lang: Lang
) -> str:
    """Who received what, when, under which consent; what was withheld and why."""
    records = [
        asdict(r) | {"proof": proof_reference(r.leaf_index, r.checkpoint_size, lang)} for r in rows
    ]
    disclosed = sum(r.outcome == "disclosed" for r in rows)
    withheld = sum(r.outcome == "withheld" for r in rows)
    totals = {"rows": len(rows), "disclosed": disclosed, "withheld": withheld}
    if lang == "fr":
        footer = f"{_fr(disclosed, 'communiqué')}, {_fr(withheld, 'retenu')}"
    else:
        footer = f"{disclosed} disclosed, {withheld} withheld"
    return _render(DISCLOSURE_COLUMNS, records, totals, scope, fmt, lang, "disclosures", footer)


def render_correction_list(
    rows: Sequence[RecipientRow], scope: ReportScope, fmt: Format, lang: Lang
) -> str:
    """Every program that received the person's data in the scope: where corrections must go."""
    count = sum(r.disclosures for r in rows)
    totals = {"recipients": len(rows), "disclosures": count}
    if lang == "fr":
        footer = f"{_fr(len(rows), 'programme')}, {_fr(count, 'communication')}"
    else:
        footer = f"{_en(len(rows), 'program')}, {_en(count, 'disclosure')}"
    records = [asdict(r) for r in rows]
    return _render(RECIPIENT_COLUMNS, records, totals, scope, fmt, lang, "recipients", footer)


def _render(
    columns: Sequence[str],
    records: list[dict[str, Any]],
    totals: Mapping[str, int],
    scope: ReportScope,
    fmt: Format,
    lang: Lang,
    kind: Literal["disclosures", "recipients"],
    footer: str,
) -> str:
    i = _LANG[lang]
    headings = [_HEADINGS[c][i] for c in columns]
    if fmt == "csv":
        out = io.StringIO()  # csv's default "\r\n" line ends are the RFC 4180 ones
        writer = csv.writer(out)
        writer.writerow(headings)
        writer.writerows([[_csv_value(rec[c]) for c in columns] for rec in records])
        return out.getvalue()
    if fmt == "json":
        document = {
            "scope": {key: _machine(value) for key, value in _scope_items(scope)},
            "rows": [{c: _machine(rec[c]) for c in columns} for rec in records],
            "totals": dict(totals),
            "lang": lang,
            "labels": dict(zip(columns, headings, strict=True)),
        }
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if fmt != "table":
        raise ValueError(f"unknown report format {fmt!r}; use table, csv or json")
    lines = [_TEXT[kind][i]]
    for key, value in _scope_items(scope):
        shown = _TEXT[_ABSENT.get(key, "any")][i] if value is None else _display(key, value, i)
        lines.append(f"{_TEXT[key][i]}{_TEXT['sep'][i]}{shown}")
    lines.append("")
    if not records:
        lines.append(_TEXT[f"no_{kind}"][i])
        return "\n".join(lines) + "\n"
    hidden = set(_TABLE_HIDDEN)
    if not any(rec.get("erased") for rec in records):
        hidden.add("erased")  # a column of dashes only widens the table
    shown_columns = [c for c in columns if c not in hidden]
    header = [_HEADINGS[c][i] for c in shown_columns]
    cells = [[_display(c, rec[c], i) for c in shown_columns] for rec in records]
    widths = [max(len(row[n]) for row in [header, *cells]) for n in range(len(header))]
    for row in [header, ["-" * w for w in widths], *cells]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines += ["", footer]
    return "\n".join(lines) + "\n"


def _scope_items(scope: ReportScope) -> list[tuple[str, object]]:
    return [(f.name, getattr(scope, f.name)) for f in fields(scope)]


def _machine(value: object) -> object:
    """CSV/JSON value: times as full-precision ISO 8601 with Z, tuples as lists."""
    if isinstance(value, datetime):
        return as_utc(value).replace(tzinfo=None).isoformat() + "Z"
    return list(value) if isinstance(value, tuple) else value


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ";".join(str(v) for v in value)
    return str(_machine(value))


def _display(column: str, value: object, i: int) -> str:
    """Table cell: labels for codes, times to the second, short hashes, no control characters."""
    if value is None or value == () or value is False:
        return "—"
    if value is True:
        return _TEXT["yes"][i]
    items = value if isinstance(value, tuple) else (value,)
    if isinstance(value, datetime):
        text = as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif column in _CODED:
        text = ", ".join(_LABELS[str(v)][i] if str(v) in _LABELS else str(v) for v in items)
    elif column == "consent_revision" and len(str(value)) > 13:
        text = str(value)[:12] + "…"
    else:
        text = ", ".join(str(v) for v in items)
    # Event ids come from publishers: never let them move the cursor or break the columns.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _en(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _fr(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count > 1)}"  # in French, 0 and 1 take the singular
