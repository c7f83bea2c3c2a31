"""What the demo prints, and its self-check: every outcome the hub recorded compared with what
the scenario expects, and the audit log verified and reconciled with the store.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from hub.audit.oversight import reconcile
from hub.bootstrap import App
from hub.demo.scenario import PEOPLE, TABLE_JURISDICTIONS, Step
from hub.model import Decision, DecisionOutcome


def build_report(
    app: App,
    steps: list[Step],
    receipts: set[str],
    bootstrap: str,
    workdir: Path,
    started: float,
) -> dict[str, Any]:
    """The rows, the summary (``tellonce demo --json`` prints it) and where things ran;
    ``summary["matched"]`` is the self-check."""
    decisions: dict[tuple[str, str], dict[str, Decision]] = defaultdict(dict)
    for d in app.store.decisions():
        decisions[(d.source, d.event_id)][d.recipient] = d
    rejections = {r.offset: r for r in app.store.rejections()}
    rejected_reasons = sorted(r.reason for r in rejections.values())
    mismatches: list[str] = []
    rows = []
    for number, step in enumerate(steps, start=1):
        row: dict[str, Any] = {
            "n": number,
            "label": step.label,
            "type": step.event_type,
            "source": step.source,
            "person": PEOPLE[step.person].name,
        }
        if step.rejected:
            row["rejected"] = step.rejected
            if step.rejected not in rejected_reasons:
                mismatches.append(f"#{number}: expected a rejection {step.rejected}")
            else:
                rejected_reasons.remove(step.rejected)
        elif step.duplicate_of:
            row["duplicate_of"] = step.duplicate_of
        else:
            got = decisions.get((step.source, step.event_id or ""), {})
            row["delivered"] = []
            row["withheld"] = []
            for recipient, decision in sorted(got.items()):
                if decision.outcome is DecisionOutcome.DISCLOSED:
                    delivered = decision.notification_id in receipts
                    row["delivered"].append((recipient, list(decision.fields), delivered))
                    if recipient not in step.disclosed:
                        mismatches.append(f"#{number}: {recipient} should not have been told")
                    if not delivered:
                        mismatches.append(f"#{number}: no delivery receipt from {recipient}")
                else:
                    row["withheld"].append((recipient, decision.reason))
                    want = step.withheld.get(recipient, "no_identity_link")
                    if recipient in step.disclosed or decision.reason != want:
                        mismatches.append(
                            f"#{number}: {recipient} withheld ({decision.reason}), expected "
                            f"{'disclosure' if recipient in step.disclosed else want}"
                        )
            if not got:
                mismatches.append(f"#{number}: the hub recorded no decisions")
        rows.append(row)
    if rejected_reasons:
        mismatches.append(f"unexpected rejections: {rejected_reasons}")
    all_decisions = [d for by in decisions.values() for d in by.values()]
    signer = app.signer()
    verdict = app.verify_audit()
    reconciled = reconcile(app.store, app.pseudonyms())
    checkpoints = app.store.checkpoints()
    summary = {
        "published": len(steps),
        "delivered": sum(1 for d in all_decisions if d.notification_id in receipts),
        "withheld": sum(1 for d in all_decisions if d.outcome is DecisionOutcome.WITHHELD),
        "rejected": len(rejections),
        "duplicates_ignored": sum(1 for s in steps if s.duplicate_of),
        "audit_leaves": verdict.leaves,
        "audit_checkpoints": len(checkpoints),
        "audit_root": checkpoints[-1].root if checkpoints else None,
        "audit_key_id": signer.key_id,
        "audit_verified": verdict.ok,
        "audit_problem": str(verdict.problem) if verdict.problem else None,
        "audit_reconciled": reconciled.ok,
        "matched": not mismatches and verdict.ok and reconciled.ok,
        "mismatches": mismatches,
        "seconds": round(time.monotonic() - started, 1),
    }
    return {
        "rows": rows,
        "summary": summary,
        "bootstrap": bootstrap,
        "broker": "Kafka cluster"
        if app.settings.broker.bootstrap_servers
        else "embedded Tansu broker",
        "workdir": str(workdir),
        "sinks": {
            r.id: ("staging table" if r.jurisdiction in TABLE_JURISDICTIONS else "file drop")
            for r in app.directory.subscribers()
        },
    }


def print_report(report: dict[str, Any]) -> None:
    """The readable demo output: one line per event, one per recipient, then the totals."""
    s = report["summary"]
    sinks = report["sinks"]
    print(
        f"tellonce demo: {report['broker']} at {report['bootstrap']}, "
        f"SQLite store in {report['workdir']}\n"
    )
    for row in report["rows"]:
        head = f"{row['n']:>2}. {row['type']:<15} from {row['source']:<20} {row['person']:<7}"
        if "rejected" in row:
            print(f"{head} REJECTED ({row['rejected']}): {row['label']}")
            continue
        if "duplicate_of" in row:
            print(f"{head} DUPLICATE of #{row['duplicate_of']}: ignored, nobody told twice")
            continue
        print(f"{head} {row['label']}")
        for recipient, fields, delivered in row["delivered"]:
            mark = "delivered" if delivered else "NOT delivered"
            print(
                f"      {mark:<10} {recipient:<24} {', '.join(fields):<48} "
                f"via {sinks.get(recipient, '?')}"
            )
        for recipient, reason in row["withheld"]:
            print(f"      {'withheld':<10} {recipient:<24} {reason.replace('_', ' ')}")
        if row["n"] == 6:
            print(
                "\n    -> Jordan withdraws consent to tell bc-icbc-licensing of address "
                "changes (online, by the client)\n"
            )
    print()
    print(
        f"published {s['published']}, delivered {s['delivered']}, withheld {s['withheld']}, "
        f"rejected {s['rejected']}, duplicates ignored {s['duplicates_ignored']} "
        f"({s['seconds']} s)"
    )
    verdict = "verified" if s["audit_verified"] else f"NOT VERIFIED ({s['audit_problem']})"
    print(
        f"audit log: {s['audit_leaves']} leaves, checkpoint {s['audit_checkpoints']} signed by "
        f"{s['audit_key_id']}, root {(s['audit_root'] or '')[:16]}…; {verdict}; "
        + ("reconciled with the store" if s["audit_reconciled"] else "NOT RECONCILED")
    )
    if s["matched"]:
        print("every outcome matched the scenario")
    else:
        print("MISMATCH with the scenario:")
        for line in s["mismatches"]:
            print(f"  - {line}")
