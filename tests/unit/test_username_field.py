"""Issue 17: ``username_ref`` takes only references, like every ``*_ref`` field; a literal user name
goes in ``username``. Before start (validate, run, gateway, CLI) a literal ``username_ref`` is refused
with the fix in the message; a recorded input holding one still decodes, with a warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from definitions.catalog import load_catalog
from definitions.ocm import RepositorySpec, TransportInput
from definitions.secrets import PRE_START
from definitions.validate import DefinitionError, validate_definition
from tests.support import pipeline
from workers.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "definitions" / "examples"


def test_literal_and_reference_forms_are_separate_fields() -> None:
    assert (
        RepositorySpec.model_validate({"url": "http://r", "username": "apeiro"}, context=PRE_START).username == "apeiro"
    )
    spec = RepositorySpec.model_validate({"url": "http://r", "username_ref": "env:REG_USER"}, context=PRE_START)
    assert spec.username_ref == "env:REG_USER" and spec.username is None
    with pytest.raises(ValidationError, match="not both"):
        RepositorySpec.model_validate({"url": "http://r", "username": "a", "username_ref": "env:U"})


def test_a_literal_username_ref_is_refused_before_start() -> None:
    with pytest.raises(ValidationError) as caught:
        RepositorySpec.model_validate({"url": "http://r", "username_ref": "s3cr3t-user"}, context=PRE_START)
    assert "write a literal user name as username: NAME" in str(caught.value)
    assert "s3cr3t-user" not in str(caught.value)
    step = {
        "name": "ship",
        "uses": "component.transport",
        "with": {
            "source": {"url": "http://127.0.0.1:5000/ocm"},
            "target": {"url": "http://127.0.0.1:5001/ocm", "username_ref": "s3cr3t-user"},
            "components": [{"name": "example.org/app", "version": "1.0.0"}],
        },
    }
    with pytest.raises(DefinitionError) as info:
        validate_definition(pipeline([step]), load_catalog())
    assert "spec.steps[0].with.target" in str(info.value) and "username: NAME" in str(info.value)
    assert "s3cr3t-user" not in str(info.value)


def test_a_recorded_literal_username_ref_still_decodes_with_a_warning() -> None:
    data = {
        "source": {"url": "http://127.0.0.1:5000/ocm"},
        "target": {"url": "http://127.0.0.1:5001/ocm", "username_ref": "apeiro", "password_ref": "env:PW"},
        "components": [{"name": "example.org/app", "version": "1.0.0"}],
    }
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        inp = TransportInput.model_validate_json(TransportInput.model_validate(data).model_dump_json())
    assert inp.target.username == "apeiro" and inp.target.username_ref is None
    assert any("username_ref is deprecated" in str(w.message) for w in seen)


def test_the_examples_write_the_literal_user_name_as_username() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        text = path.read_text()
        assert "username_ref: apeiro" not in text, path


def test_cli_username_ref_flag_takes_only_references(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["ocm", "transfer", "http://a:5000", "http://b:5000", "x:1", "--target-username-ref", "s3cr3t-user"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--target-username-ref" in err and "s3cr3t-user" not in err
