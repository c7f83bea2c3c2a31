"""The directory: the shipped example, recipient lookup, and helpful errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config.directory import Directory, Level, load_directory
from hub.errors import ConfigError, NotFoundError

GOOD = """
[[jurisdictions]]
id = "ca"
name = "Government of Canada"
level = "federal"

[[programs]]
id = "{program_id}"
jurisdiction = "{jurisdiction}"
name = "A program"
publishes = ["{publishes}"]

[programs.subscriptions.{subscribes}]
fields = [{fields}]
authority = "Some Act, s. 1"
"""


def write(tmp_path: Path, **overrides: str) -> Path:
    values = {
        "program_id": "cra-individual",
        "jurisdiction": "ca",
        "publishes": "AddressChanged",
        "subscribes": "DeathReported",
        "fields": '"date_of_death"',
    } | overrides
    path = tmp_path / "directory.toml"
    path.write_text(GOOD.format(**values), encoding="utf-8")
    return path


def test_shipped_directory_loads_without_a_path() -> None:
    """load_directory() with no path reads the example shipped in the package."""
    assert "cra-individual" in load_directory().program_ids


def test_shipped_directory_spans_all_levels(directory: Directory) -> None:
    """The example has at least six programs at federal, provincial and municipal levels."""
    assert len(directory.programs) >= 6
    level_of = {j.id: j.level for j in directory.jurisdictions}
    levels = {level_of[p.jurisdiction] for p in directory.programs}
    assert {Level.FEDERAL, Level.PROVINCIAL, Level.MUNICIPAL} <= levels


def test_shipped_directory_has_publishers_for_every_subscribed_event(directory: Directory) -> None:
    """Every event type someone subscribes to has a program that may publish it."""
    published = {t for p in directory.programs for t in p.publishes}
    subscribed = {t for p in directory.programs for t in p.subscriptions}
    assert subscribed <= published


def test_recipients_exclude_the_origin(directory: Directory) -> None:
    """The program that reported an event is not told about it again."""
    recipients = [p.id for p in directory.recipients_of("AddressChanged", origin="cra-individual")]
    assert "cra-individual" not in recipients
    assert {"esdc-cpp", "bc-msp", "toronto-property-tax"} <= set(recipients)
    everyone = [p.id for p in directory.recipients_of("AddressChanged", origin="bc-service-bc")]
    assert "cra-individual" in everyone


def test_recipients_are_only_subscribers(directory: Directory) -> None:
    """Only programs that subscribe to the event type are recipients."""
    recipients = directory.recipients_of("NameChanged", origin="bc-service-bc")
    assert [p.id for p in recipients] == ["esdc-cpp"]


def test_file_like_the_example_loads(tmp_path: Path) -> None:
    """A minimal well-formed file loads (the bad-file tests below each break one thing)."""
    loaded = load_directory(write(tmp_path))
    assert loaded.program_ids == ["cra-individual"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"jurisdiction": "atlantis"}, "names unknown jurisdiction 'atlantis'"),
        ({"publishes": "Married"}, "names unknown event type 'Married'; known: AddressChanged"),
        ({"subscribes": "Married"}, "names unknown event type 'Married'"),
        ({"fields": '"shoe_size"'}, "fields ['shoe_size'] that the event does not have"),
        ({"fields": '"subject_id"'}, "choose from ['date_of_death', "),
        ({"program_id": "CRA_Individual"}, "must be lowercase letters, digits and dashes"),
        ({"program_id": "cra.individual"}, "it becomes part of a Kafka topic name"),
    ],
    ids=[
        "unknown-jurisdiction",
        "unknown-published-type",
        "unknown-subscribed-type",
        "field-the-event-lacks",
        "subject-id-not-shareable",
        "uppercase-id",
        "dotted-id",
    ],
)
def test_bad_directory_is_refused_with_a_helpful_message(
    tmp_path: Path, override: dict[str, str], message: str
) -> None:
    """A directory that breaks a rule raises ConfigError naming the file and the problem."""
    path = write(tmp_path, **override)
    with pytest.raises(ConfigError) as info:
        load_directory(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_directory_file_says_what_to_set(tmp_path: Path) -> None:
    """A directory path that does not exist names the setting to fix."""
    with pytest.raises(ConfigError, match="TELLONCE_DIRECTORY_PATH"):
        load_directory(tmp_path / "nope.toml")


def test_directory_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    """A file that is not TOML raises ConfigError, not a parser exception."""
    path = tmp_path / "directory.toml"
    path.write_text("[[programs]\nid = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_directory(path)


def test_misspelled_program_suggests_the_right_one(directory: Directory) -> None:
    """Asking for 'cra-individul' answers with did you mean 'cra-individual'."""
    with pytest.raises(NotFoundError) as info:
        directory.program("cra-individul")
    assert "did you mean 'cra-individual'" in str(info.value)


def test_unknown_program_lists_how_to_find_programs(directory: Directory) -> None:
    """A name close to nothing still tells the user how to list the programs."""
    with pytest.raises(NotFoundError) as info:
        directory.program("zzzzzz")
    assert "did you mean" not in str(info.value)
    assert "tellonce directory show" in str(info.value)
