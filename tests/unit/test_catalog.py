"""Loading the schema catalog: a catalog of the wrong shape is a setting to fix, not a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.wire.catalog import load_catalog


@pytest.mark.parametrize("content", ["[]", '{"schemas": {}}', '{"schemas": [3]}', '"x"'])
def test_a_catalog_of_the_wrong_shape_is_a_config_error(tmp_path: Path, content: str) -> None:
    """A catalog.json that is not an object with a list of entries raises ConfigError (exit 2)
    naming the file, instead of an AttributeError deep in the loader."""
    (tmp_path / "catalog.json").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"catalog"):
        load_catalog(tmp_path)


def test_the_shipped_catalog_loads() -> None:
    """The shipped catalog has the eleven schemas the README lists, ids 1 to 11."""
    assert sorted(entry.id for entry in load_catalog().entries) == list(range(1, 12))
