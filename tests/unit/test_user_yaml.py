"""Every file a user gives goes through the hardened YAML loader (definitions/yamlfiles.py): a
duplicate key and an alias bomb are refused, through each command that reads such a file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from definitions.yamlfiles import MAX_EXPANDED_VALUES, YamlProblem, _StrictLoader, parse_yaml
from workers.cli import main

#: Nine levels of ten aliases each: a billion leaves from a few hundred bytes.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)
DUPLICATE = "kind: CloudProfile\nspec: {}\nspec: {kubernetes: {versions: []}}\n"

# (argv before the file, argv after the file): every command that reads a user's YAML file.
COMMANDS = [
    pytest.param(["promote", "validate"], [], id="promote-validate"),
    pytest.param(["promote", "start"], ["1.0.0"], id="promote-start"),
    pytest.param(["cluster", "plan", "--profile"], ["--from", "1.30.1", "--to", "1.31.1"], id="cluster-plan"),
    pytest.param(["baremetal", "validate-site"], [], id="baremetal-validate-site"),
    pytest.param(["baremetal", "discover"], [], id="baremetal-discover"),
    pytest.param(["ocm", "digest"], [], id="ocm-digest"),
]


def test_loader_refuses_duplicate_keys_with_the_line() -> None:
    with pytest.raises(YamlProblem, match=r"line 3, column 1: not valid YAML: .*duplicate key 'spec'"):
        parse_yaml(DUPLICATE)


def test_loader_refuses_an_alias_bomb_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(YamlProblem, match=f"more than {MAX_EXPANDED_VALUES} values"):
        parse_yaml(ALIAS_BOMB)
    assert time.monotonic() - started < 5


def test_loader_refuses_deep_nesting() -> None:
    with pytest.raises(YamlProblem, match=r"nested too deeply|not valid YAML"):
        parse_yaml("[" * 20_000 + "]" * 20_000)


@pytest.mark.parametrize(("before", "after"), COMMANDS)
@pytest.mark.parametrize(
    ("content", "expected"),
    [(DUPLICATE, "duplicate key 'spec'"), (ALIAS_BOMB, "values once aliases are expanded")],
    ids=["duplicate-key", "alias-bomb"],
)
def test_command_refuses_the_file(
    before: list[str],
    after: list[str],
    content: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing may get as far as connecting
    f = tmp_path / "user.yaml"
    f.write_text(content)
    code = main([*before, str(f), *after])
    out = capsys.readouterr()
    assert code in (1, 2)
    assert expected in out.out + out.err


def test_descriptors_keep_timestamps_as_text() -> None:
    """OCM hashes the RFC 3339 string as written, so the descriptor loader must not make a datetime."""
    data = parse_yaml("creationTime: 2024-01-02T03:04:05Z\n", timestamps_as_text=True)
    assert data == {"creationTime": "2024-01-02T03:04:05Z"}
    assert not isinstance(parse_yaml("t: 2024-01-02T03:04:05Z\n")["t"], str)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml: the pure Python parser is used")
def test_loader_parses_with_libyaml_and_keeps_its_checks() -> None:
    """libyaml parses (a descriptor per copied or verified version: 5-10x faster); duplicate keys,
    positions of errors and text timestamps stay ours."""
    assert issubclass(_StrictLoader, yaml.CSafeLoader)
    with pytest.raises(YamlProblem) as exc:
        parse_yaml("a: [1, 2\nb: 3\n")
    assert exc.value.where == "line 2, column 2"
    with pytest.raises(YamlProblem, match="duplicate key 'a'"):
        parse_yaml("x: 1\na: 1\na: 2\n")
    assert parse_yaml("t: 2024-01-02T03:04:05Z\n", timestamps_as_text=True) == {"t": "2024-01-02T03:04:05Z"}


def test_descriptor_text_is_the_pure_python_emitters() -> None:
    """dump_descriptor uses libyaml's emitter when it can: the text must not change with it (a
    descriptor's blob digest follows its text)."""
    from activities.ocm.normalise import dump_descriptor

    data = {
        "meta": {"schemaVersion": "v2"},
        "component": {
            "name": "github.com/acme/edge",
            "version": "1.0.0",
            "provider": {"name": "acme", "labels": [{"name": "x", "value": {"a": [1, "two: 2", None]}}]},
            "creationTime": "2024-01-02T03:04:05Z",
            "resources": [{"name": "ü-chart", "version": "1.0.0", "type": "helmChart", "relation": "local"}],
            "description": "a long line " * 12,
        },
    }
    assert dump_descriptor(data) == yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
