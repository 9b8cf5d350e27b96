"""Normalisation against OCM's own vectors, byte for byte, and model round-trips."""

from __future__ import annotations

import hashlib

import pytest

from activities.ocm import normalise as norm
from activities.ocm.errors import InvalidDescriptor, UnknownNormalisation
from definitions.ocm import ComponentDescriptor
from tests.unit.ocm.helpers import descriptor, vectors_dir

CASES = [
    ("jsonNormalisation-v3-conformance-01", "expected.json", norm.JSON_V3),
    ("jsonNormalisation-v3-conformance-01", "expected.json", norm.JSON_V4ALPHA1),
    ("ocm-v1-norm_test-cd1", "expected.jsonNormalisation-v1.txt", norm.JSON_V1),
    ("ocm-v1-norm_test-cd1", "expected.jsonNormalisation-v2.txt", norm.JSON_V2),
    ("ocm-v1-norm_test-cd1", "expected.jsonNormalisation-v3.txt", norm.JSON_V3),
    ("ocm-v1-norm_test-cd1", "expected.jsonNormalisation-v3.txt", norm.JSON_V4ALPHA1),
    ("ocm-v1-norm_test-duplicate-resource", "expected.jsonNormalisation-v1.txt", norm.JSON_V1),
    ("ocm-v1-norm_test-duplicate-resource", "expected.jsonNormalisation-v2.txt", norm.JSON_V2),
    ("ocm-v1-norm_test-duplicate-resource", "expected.jsonNormalisation-v3.txt", norm.JSON_V3),
]


@pytest.mark.parametrize(("case", "expected", "algorithm"), CASES)
def test_vector_bytes(case: str, expected: str, algorithm: str) -> None:
    d = vectors_dir() / case
    data = norm.load_descriptor_data((d / "input.yaml").read_text())
    want = (d / expected).read_bytes()
    assert norm.normalise(data, algorithm) == want
    assert norm.descriptor_digest(data, algorithm) == hashlib.sha256(want).hexdigest()
    # The same through the pydantic model (round-trip keeps every field that matters).
    model = ComponentDescriptor.model_validate(data)
    assert norm.normalise(model, algorithm) == want


def test_provenance_digests() -> None:
    d = vectors_dir() / "jsonNormalisation-v3-conformance-01"
    data = norm.load_descriptor_data((d / "input.yaml").read_text())
    assert (
        norm.descriptor_digest(data, norm.JSON_V4ALPHA1)
        == "c97c44a4dca9fc85d4e634a617b662f72935cc202d52a46aa9367c937458b35b"
    )


def test_legacy_v1_forms_of_signed_vector() -> None:
    d = vectors_dir() / "ocm-v1-signing-compat-rsa"
    data = norm.load_descriptor_data((d / "component-descriptor.yaml").read_text())
    assert (
        norm.descriptor_digest(data, norm.JSON_V1) == "cceaa5732057ec335dd6c104db3d99c4d47e7635af7734ddb779912c414c6be8"
    )
    assert (
        norm.descriptor_digest(data, norm.JSON_V1, form=norm.LEGACY_V1_NO_NULL_EXTRA_IDENTITY)
        == "b06e4c1a68274b876661f9fbf1f100526d289745f6ee847bfef702007b5b14cf"
    )


def test_model_round_trip_keeps_unknown_fields() -> None:
    text = """
meta: {schemaVersion: v2}
component:
  name: acme.org/x
  version: 1.0.0+build.5
  provider: acme
  creationTime: 2025-01-02T03:04:05Z
  futureField: {nested: [1, 2]}
  repositoryContexts: []
  sources: []
  componentReferences: []
  resources:
  - name: r
    version: 1.0.0
    type: blob
    relation: local
    vendorExtension: keep-me
    access: {type: localBlob, localReference: "sha256:ab", mediaType: text/plain, extraAccessField: 1}
    labels: [{name: l, value: {a: 1}, signing: true, mergeAlgorithm: x}]
signatures: []
topLevelUnknown: true
"""
    data = norm.load_descriptor_data(text)
    model = ComponentDescriptor.model_validate(data)
    assert model.to_dict() == data
    assert data["component"]["creationTime"] == "2025-01-02T03:04:05Z"  # not a datetime
    assert model.component.resources[0].access_type == "localBlob"


def test_normalisation_drops_what_ocm_drops() -> None:
    resource = {
        "name": "n",
        "version": "1",
        "type": "t",
        "relation": "external",
        "access": {"type": "none"},
        "digest": {"hashAlgorithm": "SHA-256", "normalisationAlgorithm": "genericBlobDigest/v1", "value": "00"},
        "srcRefs": [{"identitySelector": {"name": "s"}}],
    }
    base = {
        **descriptor("a/b", "1", "p", repositoryContexts=[{"type": "OCIRegistry"}], resources=[resource]),
        "signatures": [{"name": "x"}],
        "nestedDigests": [{"name": "y"}],
    }
    out = norm.normalise(base, norm.JSON_V4ALPHA1).decode()
    assert out == (
        '{"component":{"componentReferences":[],"name":"a/b","provider":{"name":"p"},'
        '"resources":[{"name":"n","relation":"external","type":"t","version":"1"}],'
        '"sources":[],"version":"1"}}'
    )
    # repositoryContexts / signatures do not change the digest
    changed = {**base, "signatures": [], "component": {**base["component"], "repositoryContexts": []}}
    assert norm.descriptor_digest(changed) == norm.descriptor_digest(base)


def test_go_escaping_in_v1() -> None:
    data = descriptor("a<b>&c", "1", "p\u2028")
    out = norm.normalise(data, norm.JSON_V1).decode()
    assert '"a\\u003cb\\u003e\\u0026c"' in out
    assert '"p\\u2028"' in out


def test_unknown_normalisation() -> None:
    with pytest.raises(UnknownNormalisation, match="jsonNormalisation/v9"):
        norm.normalise({"component": {}}, "jsonNormalisation/v9")


@pytest.mark.parametrize("text", ["component: [", "just a string", "meta: {schemaVersion: v3alpha1}\ncomponent: {}"])
def test_bad_descriptors(text: str) -> None:
    with pytest.raises(InvalidDescriptor):
        norm.load_descriptor_data(text)
