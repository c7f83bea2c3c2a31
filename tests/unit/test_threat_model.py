"""The README's threat-model table and the ACLs the Kafka tier applies and tests are the same."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.kafka import acls

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Threat model: who may write where"
# Column heading -> (ACL operation, resource type)
COLUMNS = {
    "Writes topics": ("WRITE", "topic"),
    "Reads topics": ("READ", "topic"),
    "Creates topics": ("CREATE", "topic"),
    "Describes topics": ("DESCRIBE", "topic"),
    "Reads groups": ("READ", "group"),
    "Describes groups": ("DESCRIBE", "group"),
}
# The roles with the README's placeholders for a program <P> and a recipient <R>.
ROLES = {
    role.kind: role
    for role in (
        acls.hub(),
        acls.publisher("<P>"),
        acls.connector("<R>"),
        acls.portal("<P>"),
        acls.operator(["<R>"]),
    )
}


def readme_table() -> dict[str, tuple[str, set[acls.Grant]]]:
    """Role kind -> (principal, grants) as the README's table states them."""
    text = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in text.splitlines() if line.startswith("|")]
    heading = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: dict[str, tuple[str, set[acls.Grant]]] = {}
    for line in lines[2:]:
        cells = dict(zip(heading, (c.strip() for c in line.strip("|").split("|")), strict=True))
        grants = set()
        for column, (operation, resource) in COLUMNS.items():
            for name in re.findall(r"`([^`]+)`", cells[column]):
                prefixed = name.endswith("*")
                grants.add(acls.Grant(operation, resource, name.rstrip("*"), prefixed))
        (principal,) = re.findall(r"`([^`]+)`", cells["Principal"])
        rows[cells["Role"].split()[0]] = (principal, grants)
    return rows


def test_the_readme_table_states_exactly_the_acls_of_each_role() -> None:
    """Each role's row in the README names its principal and exactly the bindings acls.py
    creates, so the documented threat model is the one the Kafka tier tests."""
    expected = {kind: (role.principal, set(role.grants)) for kind, role in ROLES.items()}
    assert readme_table() == expected
