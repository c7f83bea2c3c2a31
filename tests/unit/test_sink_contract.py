"""The shipped sink contract, run on the file-drop sink (default JSON format, one file a notice).

The staging-table sink runs the same contract on real databases in
``tests/integration/test_sqltable_sink.py``; a third-party sink installed through an entry
point runs it in ``test_connector_plugins.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from connectors.filedrop import FileDropSink
from connectors.testing import SinkContract, crash, sample_notification


class TestFileDropSink(SinkContract):
    @pytest.fixture(autouse=True)
    def far_side(self, tmp_path: Path) -> None:
        self.inbox = tmp_path / "inbox"

    def make_sink(self) -> FileDropSink:
        return FileDropSink("cra-individual", {"directory": str(self.inbox)})

    def delivered(self) -> list[str]:
        """The ids in the files a batch reader picks up (it ignores dot files)."""
        files = [p for p in sorted(self.inbox.glob("*.json")) if not p.name.startswith(".")]
        return [json.loads(p.read_text(encoding="utf-8"))["notification_id"] for p in files]

    @contextmanager
    def break_far_side(self) -> Iterator[None]:
        """The drop folder is moved away and a plain file stands in its place."""
        aside = self.inbox.with_name("inbox-aside")
        self.inbox.rename(aside)
        self.inbox.write_text("not a folder\n", encoding="utf-8")
        try:
            yield
        finally:
            self.inbox.unlink()
            aside.rename(self.inbox)

    @contextmanager
    def crash_mid_delivery(self, sink: object) -> Iterator[None]:
        """The temporary file is written and synced; the process dies before the rename."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "replace", crash)
            yield


def test_sample_notification_is_new_each_call_and_takes_overrides() -> None:
    """sample_notification() gives a new id each call and replaces what it is given."""
    first, second = sample_notification(), sample_notification(recipient="on-ohip")
    assert first.notification_id != second.notification_id
    assert (first.recipient, second.recipient) == ("bc-msp", "on-ohip")
    assert json.loads(first.to_json())["fields"]["new_address"]["province"] == "BC"
