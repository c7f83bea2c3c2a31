"""Signing keys for the tests' flows, which run as production does: with signed life events,
consent events and notices required (the defaults).

Each program of the directory has one key, made once per test process in a folder of its
own (one that publishes nothing has a key too: the hub then refuses its event as
not_authorized, not for its signature), so that every App a test makes can list it
(``signing_directory``) and every publisher in it signs with it (``signer``, ``sign``). A
process a test starts reads the same keys from a directory file (``directory_file``) and a
key file (``key_file``), as README, "Running the parts yourself", tells a user to set them up.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hub.adapters.record_keys import RecordKey
from hub.config.directory import Directory, load_directory
from hub.config.signing_keys import ProgramKey
from hub.errors import RejectedEvent
from hub.model import Headers
from hub.wire.signatures import EVENT_CONTEXT, signed

SHIPPED = Path(__file__).resolve().parents[1] / "hub" / "config" / "resources" / "directory.toml"

# Every key is valid from well before any event a test publishes, and never expires.
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)

_FOLDER: list[Path] = []
_KEYS: dict[str, RecordKey] = {}


def _folder() -> Path:
    if not _FOLDER:
        folder = Path(tempfile.mkdtemp(prefix="tellonce-test-keys-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _FOLDER.append(folder)
    return _FOLDER[0]


def signer(program: str) -> RecordKey:
    """The key ``program`` signs its records with (made on first use)."""
    if program not in _KEYS:
        _KEYS[program] = RecordKey.new(_folder() / f"{program}.pem")
    return _KEYS[program]


def key_file(program: str) -> Path:
    """The file of ``program``'s key: what ``tellonce publish --key`` takes."""
    signer(program)
    return _folder() / f"{program}.pem"


def connector_env(recipient: str) -> dict[str, str]:
    """The variable that makes a ``tellonce connector run`` process of ``recipient`` sign its
    receipts with that program's key (which the directory lists), as the hub requires."""
    return {"TELLONCE_CONNECTOR__SIGNING_KEY": str(key_file(recipient))}


def sign(
    key: bytes | None, value: bytes | None, headers: Headers, program: str | None = None
) -> Headers:
    """``headers`` with ``program``'s signature over the record as it is sent: a crafted
    record's bytes are signed as they are, so that the hub refuses it for what was crafted,
    not for its signature. Without ``program``, the program its ce_source names signs it, or
    bc-service-bc when that names none. A record no signing text can be made of (a header or
    the key not UTF-8, a header too long) is left unsigned: the hub refuses it for that
    before it looks at a signature."""
    if program is None:
        source = dict(headers).get("ce_source", b"")
        known = load_directory(SHIPPED).program_ids
        program = next((p for p in known if p.encode() == source), "bc-service-bc")
    try:
        return signed(key or b"", value or b"", headers, signer(program), EVENT_CONTEXT)
    except (RejectedEvent, UnicodeDecodeError):
        return headers


def signing_directory(directory: Directory, hub: ProgramKey) -> Directory:
    """``directory`` listing each program's key and the hub's key (``hub``: the entry of its
    audit key)."""
    signing = directory.with_hub_keys(hub)
    for program in directory.program_ids:
        listed = signing.program(program).with_keys(signer(program).directory_entry(VALID_FROM))
        signing = signing.with_program(listed)
    return signing


def directory_file(path: Path, *hub: ProgramKey) -> Path:
    """Write at ``path`` the shipped directory with each program's key entry added after its
    program's table and the hub's entries (``hub``) at the end, as a user adds what
    'tellonce keys new' and 'tellonce keys hub-entry' print; returns ``path``."""
    programs = {
        program: _entry("programs.keys", signer(program).directory_entry(VALID_FROM))
        for program in load_directory(SHIPPED).program_ids
    }
    return write_directory(path, programs, "\n".join(_entry("hub_keys", key) for key in hub))


def write_directory(path: Path, programs: dict[str, str], hub: str) -> Path:
    """Write at ``path`` the shipped directory with the TOML text ``programs[P]`` added after
    program P's table and ``hub`` at the end; returns ``path``."""
    text = SHIPPED.read_text(encoding="utf-8")
    for program, entry in programs.items():
        start = text.index(f'id = "{program}"')
        end = text.find("[[programs]]", start)
        end = len(text) if end < 0 else end
        text = f"{text[:end].rstrip()}\n\n{entry}\n{text[end:]}"
    path.write_text(f"{text.rstrip()}\n\n{hub}", encoding="utf-8")
    return path


def hub_key(path: Path) -> ProgramKey:
    """The directory entry of the hub's audit key at ``path``, the key made there first if
    there is none (as the hub would)."""
    key = RecordKey.load(path) if path.exists() else RecordKey.new(path)
    return key.directory_entry(VALID_FROM)


def _entry(table: str, key: ProgramKey) -> str:
    since = key.valid_from.isoformat().replace("+00:00", "Z")
    return f'[[{table}]]\nid = "{key.id}"\npublic_key = "{key.public_key}"\nvalid_from = {since}\n'
