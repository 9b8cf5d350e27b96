"""Secrets: every `*_ref` field and `--*-ref` flag takes only references; a refused value (maybe the
secret itself) is never quoted; failures are encrypted with the payload codec; state files are 0600."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import stat
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

import definitions
from activities.secrets import SecretError, resolve_secret
from definitions.secrets import redacted
from workers.cli import main

SECRET = "hunter2-Zq81x"
#: `*_ref` fields that may hold a literal: a user name is not a secret (definitions/secrets.py).
LITERAL_OK = {"username_ref"}


def ref_fields() -> list[tuple[type[BaseModel], str]]:
    found = []
    for info in pkgutil.iter_modules(definitions.__path__):
        module = importlib.import_module(f"definitions.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseModel) and cls.__module__ == module.__name__:
                found += [(cls, name) for name in cls.model_fields if name.endswith("_ref") and name not in LITERAL_OK]
    return found


FIELDS = ref_fields()


def test_the_walk_finds_the_known_fields() -> None:
    names = {f"{cls.__name__}.{name}" for cls, name in FIELDS}
    assert {
        "BmcCredentials.password_ref",
        "RepositorySpec.password_ref",
        "SigningSpec.private_key_ref",
        "GardenRef.kubeconfig_ref",
    } <= names


@pytest.mark.parametrize(("model", "field"), FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FIELDS])
def test_every_ref_field_takes_only_references(model: type[BaseModel], field: str) -> None:
    info = model.model_fields[field]
    adapter: TypeAdapter[Any] = TypeAdapter(info.annotation)
    for good in ("env:REGISTRY_PASSWORD", "file:/run/secrets/pw", "k8s:ns/name#key"):
        assert adapter.validate_python(good) == good
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(model).validate_python({field: SECRET})
    mine = [e for e in caught.value.errors() if e["loc"] and e["loc"][0] == field]
    assert mine, f"{model.__name__}.{field} accepted a literal secret"
    assert all(SECRET not in e["msg"] for e in mine)
    assert SECRET not in str(caught.value), "pydantic's error text quotes the refused value"


def _models() -> list[type[BaseModel]]:
    out = []
    for info in pkgutil.iter_modules(definitions.__path__):
        module = importlib.import_module(f"definitions.{info.name}")
        out += [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, BaseModel) and c.__module__ == module.__name__
        ]
    return out


def _holds_refs(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> bool:
    seen = seen if seen is not None else set()
    if model in seen:
        return False
    seen.add(model)
    for name, info in model.model_fields.items():
        if name.endswith("_ref"):
            return True
        for arg in _types(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel) and _holds_refs(arg, seen):
                return True
    return False


def _types(annotation: Any) -> list[Any]:
    from typing import get_args

    args = list(get_args(annotation))
    return [annotation, *[t for a in args for t in _types(a)]]


def test_every_model_holding_a_reference_hides_inputs_in_errors() -> None:
    """pydantic quotes the input of a refused field (`input_value='hunter2'`) unless the OUTERMOST
    model validated sets hide_input_in_errors: every model that holds a reference, at any depth."""
    missing = [m.__name__ for m in _models() if _holds_refs(m) and not m.model_config.get("hide_input_in_errors")]
    assert not missing, f"set hide_input_in_errors=True on: {', '.join(sorted(missing))}"


def test_redacted_says_kind_and_length_only() -> None:
    assert redacted(SECRET) == f"a plain value of {len(SECRET)} characters"
    assert "https" in redacted("https://x") and "x" not in redacted("https://x").replace("prefixed", "")


def test_resolve_never_quotes_a_refused_value() -> None:
    with pytest.raises(SecretError) as caught:
        resolve_secret(SECRET)
    assert SECRET not in caught.value.message and "13 characters" in caught.value.message


@pytest.mark.parametrize(
    "argv",
    [
        ["ocm", "transfer", "http://a/ocm", "http://b/ocm", "c:1", "--target-password-ref", SECRET],
        ["ocm", "transfer", "http://a/ocm", "http://b/ocm", "c:1", "--source-password-ref", SECRET],
        ["webhook", "sign", "body.json", "--key-ref", SECRET],
        ["codec", "serve", "--token-ref", SECRET],
    ],
)
def test_ref_flags_refuse_literals_without_echoing_them(argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "must be a secret reference" in err.getvalue()
    assert SECRET not in out.getvalue() + err.getvalue()


def test_site_with_a_literal_password_is_refused_without_echo(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site:\n  name: edge\n  credentials: {lab: {username: u, password_ref: " + SECRET + "}}\n"
        "  default_credentials: lab\n  bmcs: [{url: 'https://10.0.0.1'}]\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["baremetal", "validate-site", str(site)])
    assert code == 1 and "must be a secret reference" in out.getvalue() + err.getvalue()
    assert SECRET not in out.getvalue() + err.getvalue()


async def test_failure_messages_are_encrypted_with_the_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from workers.config import data_converter

    monkeypatch.setenv("I17_PAYLOAD_KEY", os.urandom(32).hex())
    monkeypatch.setenv("APEIRO_PAYLOAD_KEYS", "k1=env:I17_PAYLOAD_KEY")
    converter = data_converter()
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"cannot reach https://{SECRET}.example"), failure)
    assert SECRET not in failure.message and SECRET.encode() not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == b"binary/encrypted"
    back = await converter.decode_failure(failure)
    assert SECRET in str(back)


def test_landscape_state_file_is_owner_only(tmp_path: Path) -> None:
    from landscape.landscape import STATE_FILE, Landscape

    land = Landscape([], state_dir=tmp_path)
    land.write_state()
    mode = stat.S_IMODE((tmp_path / STATE_FILE).stat().st_mode)
    assert mode == 0o600, oct(mode)
