"""OCM component transport: descriptor normalisation, digests, signing, OCI registry access."""
