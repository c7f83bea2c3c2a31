"""Which TELLONCE_* environment variables name a setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.config.settings import HubSettings, Settings, setting_variables, unknown_variables


def test_every_nested_setting_has_its_variable() -> None:
    """Each field of each nested model is reachable as TELLONCE_<MODEL>__<FIELD>."""
    names = setting_variables()
    for model_name, field in Settings.model_fields.items():
        assert f"TELLONCE_{model_name.upper()}" in names
        nested = getattr(field.annotation, "model_fields", {})
        for sub in nested:
            assert f"TELLONCE_{model_name.upper()}__{sub.upper()}" in names


def test_known_variables_pass_in_any_case() -> None:
    """Known names pass whatever their case; other variables are not looked at."""
    environ = {
        "TELLONCE_STORE__URL": "sqlite:///x.db",
        "tellonce_log_level": "debug",
        "TELLONCE_BROKER": "{}",
        "PATH": "/usr/bin",
        "TELLONCEX": "not ours: no underscore after the prefix",
    }
    assert unknown_variables(environ) == []


def test_a_single_underscore_gets_the_nested_name_suggested() -> None:
    """TELLONCE_STORE_URL is refused with TELLONCE_STORE__URL as the suggestion."""
    assert unknown_variables({"TELLONCE_STORE_URL": "x"}) == [
        "TELLONCE_STORE_URL is not a tellonce setting; did you mean TELLONCE_STORE__URL?"
    ]


def test_a_misspelt_nested_field_gets_the_closest_field() -> None:
    """A typo inside a nested name is refused with the closest real name."""
    problems = unknown_variables({"TELLONCE_BROKER__BOOTSTRAP_SERVER": "h:9092"})
    assert problems == [
        "TELLONCE_BROKER__BOOTSTRAP_SERVER is not a tellonce setting; "
        "did you mean TELLONCE_BROKER__BOOTSTRAP_SERVERS?"
    ]


def test_a_name_like_nothing_known_gets_no_suggestion() -> None:
    """A name far from every setting is refused without a misleading suggestion."""
    assert unknown_variables({"TELLONCE_QQQ": "1"}) == ["TELLONCE_QQQ is not a tellonce setting"]


def test_values_are_never_quoted() -> None:
    """Only the variable's name is reported: its value may be a password."""
    (problem,) = unknown_variables({"TELLONCE_STORE_URL": "postgresql://u:s3cret@h/db"})
    assert "s3cret" not in problem


def test_a_group_id_wider_than_the_store_keeps_is_refused() -> None:
    """TELLONCE_HUB__GROUP_ID over 255 characters is a settings error at start, not a database
    error on every batch; 255 characters are accepted."""
    with pytest.raises(ValidationError, match="group_id"):
        HubSettings(group_id="g" * 256)
    assert len(HubSettings(group_id="g" * 255).group_id) == 255


def test_settings_cannot_be_changed_once_read() -> None:
    """Settings are frozen, nested sections too: a run derives values beside them, never in them."""
    settings = Settings(hub=HubSettings(batch_size=5))
    with pytest.raises(ValidationError, match="frozen"):
        settings.hub.batch_size = 2
    with pytest.raises(ValidationError, match="frozen"):
        settings.hub = HubSettings()
    assert settings.hub.batch_size == 5


@pytest.mark.parametrize(
    ("url", "chosen", "expected"),
    [
        ("sqlite:///hub.db", None, False),
        ("postgresql://postgres@127.0.0.1/test", None, True),
        ("sqlite:///hub.db", True, True),
        ("postgresql://postgres@127.0.0.1/test", False, False),
    ],
)
def test_relay_thread_by_store_unless_chosen(url: str, chosen: bool | None, expected: bool) -> None:
    """Unset, the relay gets a thread on PostgreSQL and stays in the loop on SQLite; a value
    set by the operator wins either way."""
    settings = Settings.model_validate(
        {"store": {"url": url}, "hub": {"relay_in_background": chosen}}
    )
    assert settings.relay_in_background() is expected
