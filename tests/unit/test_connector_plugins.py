"""Finding sinks: built-in names, third-party entry points, ``module:attr``, and the messages a
user gets when a name is wrong or an optional dependency is missing.

A tiny third-party package is "installed" for real: a module and its ``.dist-info`` (with an
``entry_points.txt`` in the ``tellonce.connectors`` group) written to a folder on ``sys.path``,
which is all ``importlib.metadata`` looks at. The shipped sink contract then runs on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import connectors
from connectors import ENTRY_POINT_GROUP, UnknownSinkError, available, resolve_sink
from connectors.contract import Outcome, Sink, SinkFactory
from connectors.filedrop import FileDropSink
from connectors.sqltable import MissingDriverError
from connectors.testing import SinkContract, crash, sample_notification
from hub.bootstrap import App, KafkaConnection
from hub.config.settings import AuditSettings, Settings, StoreSettings
from hub.errors import ConfigError

TINY_SINK = '''\
"""A third-party sink: one JSON file per notification in a folder."""

import os
from pathlib import Path

from connectors.contract import DeliveryResult, Outcome


class TinySink:
    name = "tiny"

    def __init__(self, recipient, options):
        self.folder = Path(options["folder"])
        self.folder.mkdir(parents=True, exist_ok=True)

    def deliver(self, notification):
        final = self.folder / f"{notification.notification_id}.json"
        if final.exists():
            return DeliveryResult(Outcome.DUPLICATE)
        temp = self.folder / f".{notification.notification_id}.tmp"
        try:
            temp.write_text(notification.to_json(), encoding="utf-8")
            os.replace(temp, final)
        except OSError as exc:
            return DeliveryResult(Outcome.RETRY, "cannot write the file", error=type(exc).__name__)
        return DeliveryResult(Outcome.DELIVERED)

    def close(self):
        pass
'''


def install_tiny_sink(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lays out what ``pip install tiny-sink`` would: the module and its dist-info."""
    (site / "tiny_sink.py").write_text(TINY_SINK, encoding="utf-8")
    dist_info = site / "tiny_sink-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tiny-sink\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ntiny = tiny_sink:TinySink\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site folder with the tiny sink installed, forgotten again after the test."""
    folder = tmp_path / "site"
    folder.mkdir()
    install_tiny_sink(folder, monkeypatch)
    yield folder
    sys.modules.pop("tiny_sink", None)


class TestTinySinkFromEntryPoint(SinkContract):
    """The shipped contract, run on the third-party sink as resolved through its entry point."""

    @pytest.fixture(autouse=True)
    def far_side(self, site: Path, tmp_path: Path) -> None:
        self.factory: SinkFactory = resolve_sink("tiny")
        self.folder = tmp_path / "far-side"

    def make_sink(self) -> Sink:
        return self.factory("bc-msp", {"folder": str(self.folder)})

    def delivered(self) -> list[str]:
        files = sorted(self.folder.glob("*.json"))
        return [json.loads(p.read_text(encoding="utf-8"))["notification_id"] for p in files]

    @contextmanager
    def break_far_side(self) -> Iterator[None]:
        aside = self.folder.with_name("far-side-aside")
        self.folder.rename(aside)
        self.folder.write_text("not a folder\n", encoding="utf-8")
        try:
            yield
        finally:
            self.folder.unlink()
            aside.rename(self.folder)

    @contextmanager
    def crash_mid_delivery(self, sink: Sink) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "replace", crash)  # the temporary file is there, not renamed
            yield


def test_entry_point_sink_is_listed(site: Path) -> None:
    """An installed package's entry point shows in available() next to the built-ins."""
    names = available()
    assert names["tiny"] == "entry point (tiny_sink:TinySink)"
    assert names["sqltable"] == names["filedrop"] == "built-in"


def test_entry_point_sink_resolves_by_name(site: Path, tmp_path: Path) -> None:
    """resolve_sink('tiny') loads the class the entry point names, and it delivers."""
    factory = resolve_sink("tiny")
    assert factory.__module__ == "tiny_sink"
    sink = factory("bc-msp", {"folder": str(tmp_path / "out")})
    try:
        assert sink.deliver(sample_notification()).outcome is Outcome.DELIVERED
    finally:
        sink.close()


def test_connector_list_command_shows_entry_point_sink(site: Path) -> None:
    """`tellonce connector list` shows a sink installed by another package, and its origin."""
    tellonce = Path(sys.executable).with_name("tellonce")  # the console script pip installed
    assert tellonce.exists(), "install tellonce first: pip install -e '.[test]'"
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [str(tellonce), "connector", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {
        line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in done.stdout.splitlines()
    }
    assert rows["tiny"] == "entry point (tiny_sink:TinySink)"
    assert rows["sqltable"] == "built-in"


def test_unknown_name_suggests_the_closest() -> None:
    """A misspelt name answers with the closest sink and the list of available ones."""
    with pytest.raises(UnknownSinkError, match=r"Did you mean 'sqltable'\?") as caught:
        resolve_sink("sqltabel")
    assert "filedrop" in str(caught.value)


def test_unrelated_name_lists_what_is_available() -> None:
    """A name close to nothing gets no guess, only the available names and the module:attr hint."""
    with pytest.raises(UnknownSinkError, match="module:attr") as caught:
        resolve_sink("zzzzzz")
    assert "Did you mean" not in str(caught.value)


def test_module_attr_names_any_sink(site: Path) -> None:
    """An explicit module:attr resolves without an entry point, built-in or not."""
    assert resolve_sink("connectors.filedrop:FileDropSink") is FileDropSink
    assert resolve_sink("tiny_sink:TinySink").__module__ == "tiny_sink"


def test_module_attr_with_a_missing_attribute_says_which() -> None:
    """module:attr naming an attribute the module lacks says so."""
    with pytest.raises(UnknownSinkError, match="has no attribute 'NoSuchSink'"):
        resolve_sink("connectors.filedrop:NoSuchSink")


def test_builtin_with_missing_dependency_names_the_extra(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A built-in whose module imports a missing package answers with the extra to install."""
    (site / "needy_sink.py").write_text(
        "import pymysql\n\nclass NeedySink: ...\n", encoding="utf-8"
    )
    monkeypatch.setitem(sys.modules, "pymysql", None)  # as if PyMySQL were not installed
    monkeypatch.setitem(connectors.BUILTIN, "needy", ("needy_sink:NeedySink", "mariadb"))
    try:
        with pytest.raises(UnknownSinkError, match=r"pip install 'tellonce\[mariadb\]'"):
            resolve_sink("needy")
    finally:
        sys.modules.pop("needy_sink", None)


@pytest.mark.parametrize(
    ("url", "driver", "extra"),
    [
        ("mysql://root@127.0.0.1:3306/inbox", "pymysql", "mariadb"),
        ("mariadb://root@127.0.0.1:3306/inbox", "pymysql", "mariadb"),
        ("postgresql://postgres@127.0.0.1:5432/inbox", "psycopg", "postgres"),
    ],
)
def test_sqltable_without_its_driver_names_the_extra(
    url: str, driver: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staging-table sink resolves without a driver; opening it on a URL whose driver is
    missing answers with the tellonce extra to install, before any connection is tried."""
    monkeypatch.setitem(sys.modules, driver, None)  # as if the driver were not installed
    factory = resolve_sink("sqltable")
    with pytest.raises(MissingDriverError, match=rf"pip install 'tellonce\[{extra}\]'") as caught:
        factory("bc-msp", {"url": url})
    assert driver in str(caught.value)
    assert isinstance(caught.value, ValueError)  # so `connector run` reports a config error


def test_a_sink_whose_name_no_receipt_can_carry_is_refused_at_start(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sink naming itself with more than 64 characters stops the connector before it reads
    anything, saying what to change: the hub would refuse every one of its receipts."""
    import tiny_sink  # type: ignore[import-not-found]

    monkeypatch.setattr(tiny_sink.TinySink, "name", "t" * 65)
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'hub.db'}"),
        audit=AuditSettings(signing_key=tmp_path / "audit.pem", create_key=True),
    )
    app = App.from_settings(settings)
    with pytest.raises(ConfigError, match=r"name of 65 characters.*1 to 64: shorten"):
        app.connector(
            KafkaConnection.plaintext("127.0.0.1:1"),
            "bc-msp",
            "tiny",
            {"folder": str(tmp_path / "far")},
        )


def test_a_connector_whose_directory_lists_no_hub_key_refuses_to_start(tmp_path: Path) -> None:
    """With signed notices required (the default) and no hub key in the directory, every
    notice would be dead-lettered: the connector stops before it asks the broker anything,
    with one line saying how to list the key or turn the check off."""
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'hub.db'}"),
        audit=AuditSettings(signing_key=tmp_path / "audit.pem", create_key=True),
    )
    app = App.from_settings(settings)
    assert app.directory.hub_keys == ()  # the shipped directory lists none
    with pytest.raises(ConfigError) as refused:
        app.connector(
            KafkaConnection.plaintext("127.0.0.1:1"),
            "bc-msp",
            "filedrop",
            {"directory": str(tmp_path / "inbox")},
        )
    assert str(refused.value) == (
        "the directory lists no hub key (hub_keys); add the entry 'tellonce keys hub-entry' "
        "prints, or set TELLONCE_CONNECTOR__REQUIRE_SIGNED_NOTICES=false"
    )
