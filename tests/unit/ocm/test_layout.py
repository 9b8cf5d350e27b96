"""OCM layout helpers: repository names, tags, image references, deterministic descriptor layers."""

from __future__ import annotations

import pytest

from activities.ocm.errors import InvalidDescriptor
from activities.ocm.layout import ImageRef, RepoBase, descriptor_from_layer, descriptor_tar, version_tag
from activities.ocm.transport import _registry_url_for
from definitions.ocm import RepositorySpec


def test_repository_names_and_tags() -> None:
    base = RepoBase.parse("https://registry.example:5000/site/ocm/")
    assert base.registry_url == "https://registry.example:5000" and base.prefix == "site/ocm"
    assert base.component_repo("acme.org/app") == "site/ocm/component-descriptors/acme.org/app"
    assert RepoBase.parse("http://127.0.0.1:5000").component_repo("a/b") == "component-descriptors/a/b"
    assert version_tag("1.0.0+build.7") == "1.0.0.build-build.7"
    with pytest.raises(InvalidDescriptor):
        RepoBase.parse("ftp://x")


def test_image_references() -> None:
    ref = ImageRef.parse("127.0.0.1:5000/ocm/images/app:1.0.0@sha256:" + "a" * 64)
    assert (ref.host, ref.repo, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "ocm/images/app",
        "1.0.0",
        "sha256:" + "a" * 64,
    )
    assert str(ref) == "127.0.0.1:5000/ocm/images/app:1.0.0@sha256:" + "a" * 64
    assert ImageRef.parse("ghcr.io/org/img").tag is None
    with pytest.raises(InvalidDescriptor):
        ImageRef.parse("library/nginx:1")  # no registry host


def test_descriptor_layer_is_deterministic() -> None:
    text = "meta: {schemaVersion: v2}\ncomponent: {name: a, version: '1'}\n"
    assert descriptor_tar(text) == descriptor_tar(text)
    assert descriptor_from_layer(descriptor_tar(text), "application/x+tar").decode() == text
    assert (
        descriptor_from_layer(text.encode(), "application/vnd.ocm.software.component-descriptor.v2+yaml")
        == text.encode()
    )


def test_registry_scheme_for_image_hosts() -> None:
    src = RepositorySpec(url="http://127.0.0.1:5000/ocm")
    assert _registry_url_for("127.0.0.1:5000", src) == "http://127.0.0.1:5000"
    assert _registry_url_for("localhost:6000", src) == "http://localhost:6000"
    assert _registry_url_for("ghcr.io", src) == "https://ghcr.io"
