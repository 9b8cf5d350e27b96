"""edge-site's promotion step validates fully inside the pipeline, PromQL included."""

from __future__ import annotations

import copy

import pytest

from definitions.catalog import load_catalog
from definitions.library import EXAMPLES
from definitions.validate import DefinitionError, load_yaml, validate_definition

#: edge-site's required inputs (what the local landscape provides)
INPUTS = {
    "serverSite": {"name": "edge-demo-1", "bmcs": [{"url": "http://127.0.0.1:8000",
                                                     "credentials": {"username": "admin",
                                                                     "password_ref": "env:BMC_PASSWORD"}}]},
    "gardenLinuxImage": {"url": "http://127.0.0.1:8001/gardenlinux.iso", "sha256": "0" * 64},
}


def merged() -> dict:
    return load_yaml((EXAMPLES / "edge-site.yaml").read_text())


def test_edge_site_with_promotion_step_validates() -> None:
    p, _ = validate_definition(merged(), load_catalog(), inputs=INPUTS)
    step = next(s for s in p.spec.steps if s.name == "promote_software")
    assert step.uses == "promotion.run" and step.needs == ["ship_software"]


def test_bad_promql_in_the_step_fails_pipeline_validation() -> None:
    site = copy.deepcopy(merged())
    step = next(s for s in site["spec"]["steps"] if s["name"] == "promote_software")
    step["with"]["promotion"]["spec"]["rings"][1]["verifyGates"][1]["query"] = "sum(rate(x[30s])"
    with pytest.raises(DefinitionError, match="unparsable PromQL"):
        validate_definition(site, load_catalog(), inputs=INPUTS)
