"""`apeiro cluster plan --profile F --from V --to V`: print the upgrade path Gardener will accept.

The plan is the one `cluster.upgrade` follows: one minor at a time, the highest usable patch of each
intermediate minor, no expired versions, no preview versions unless ``--allow-preview``.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from definitions.cluster_plan import VersionError, plan_control_plane, profile_kubernetes_versions
from definitions.yamlfiles import load_yaml_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = sub.add_parser("cluster", help="cluster lifecycle helpers (Gardener shoots)")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    p = cluster_sub.add_parser("plan", help="print the upgrade plan from a CloudProfile")
    p.add_argument("--profile", type=Path, required=True, help="CloudProfile as a YAML or JSON file")
    p.add_argument("--from", dest="current", required=True, help="current Kubernetes version, e.g. 1.29.10")
    p.add_argument("--to", dest="target", required=True, help="target Kubernetes version, e.g. 1.32.2")
    p.add_argument("--allow-preview", action="store_true", help="allow preview versions on the way")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)


def load_profile(path: Path) -> dict[str, Any]:
    data = load_yaml_file(path)
    if isinstance(data, dict) and data.get("kind") == "CloudProfileList":
        data = (data.get("items") or [None])[0]
    if not isinstance(data, dict) or data.get("kind") not in (None, "CloudProfile") or "spec" not in data:
        raise ValueError(f"{path} does not hold a CloudProfile (kind CloudProfile with a spec)")
    return data


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.profile)
        versions = profile_kubernetes_versions(profile)
        plan = plan_control_plane(versions, args.current, args.target, datetime.now(UTC), args.allow_preview)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # VersionError is a ValueError
        kind = "cannot plan" if isinstance(exc, VersionError) else "error"
        print(f"{kind}: {exc}")
        return 2
    if args.json:
        print(json.dumps(plan.model_dump(), indent=2))
        return 0
    name = (profile.get("metadata") or {}).get("name", args.profile.name)
    print(f"upgrade plan {plan.current} -> {plan.target} (CloudProfile {name})")
    if not plan.steps:
        print("  nothing to do: already at the target")
    for i, step in enumerate(plan.steps, 1):
        print(f"  {i}. control plane -> {step.kubernetes_version}  ({step.reason})")
    for skipped in plan.skipped:
        print(f"  skipped {skipped}")
    print("  then worker pools and machine images (cluster.upgrade plans those from the live shoot)")
    return 0
