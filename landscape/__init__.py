"""The local Apeiro landscape: real peers started as processes on loopback for the demo and the tests.

Each peer is a :class:`landscape.part.Part`. A :class:`landscape.landscape.Landscape` starts parts in
order, records their endpoints and process ids in a state directory (so `apeiro dev down` from another
process can stop them), and stops them in reverse order. Later lifecycles add parts (Redfish emulator,
OCI registries, the garden API) without touching the ones that exist.

The landscape is its own distribution (``apeiro-landscape``, landscape/pyproject.toml), never shipped
with the product, and imports nothing from the product (import-linter contracts in pyproject.toml):
simulators implement the upstream systems' documented behaviour themselves.
"""
