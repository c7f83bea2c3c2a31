"""The errors that joined hub.errors: one root, not retriable, old bases and import paths kept."""

from __future__ import annotations

import pytest

import connectors
import connectors.sqltable
import hub.audit.merkle
import hub.delivery.runner
from hub import errors


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (errors.UnknownSinkError, (errors.ConfigError, LookupError)),
        (errors.MissingDriverError, (errors.ConfigError, ValueError)),
        (errors.ProofError, (errors.VerificationError, ValueError)),
        (errors.ConnectorStopped, ()),
    ],
)
def test_joined_errors_are_tellonce_errors_that_keep_their_old_bases(
    error: type[errors.TellonceError], bases: tuple[type[Exception], ...]
) -> None:
    """Each is a TellonceError a caller may catch by its old base too, and none is retried."""
    assert issubclass(error, errors.TellonceError)
    assert all(issubclass(error, base) for base in bases)
    assert error("what went wrong").retriable is False


def test_old_import_paths_name_the_same_classes() -> None:
    """Plug-ins and callers that import the errors from where they were get the same class."""
    assert connectors.UnknownSinkError is errors.UnknownSinkError
    assert connectors.sqltable.MissingDriverError is errors.MissingDriverError
    assert hub.audit.merkle.ProofError is errors.ProofError
    assert hub.delivery.runner.ConnectorStopped is errors.ConnectorStopped


def test_the_tree_in_the_docstring_names_every_error() -> None:
    """The module docstring draws every error class of hub.errors."""
    classes = [
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.TellonceError)
    ]
    assert errors.__doc__ is not None
    assert [name for name in classes if name not in errors.__doc__] == []
