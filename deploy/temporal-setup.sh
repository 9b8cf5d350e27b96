#!/bin/sh
# One-shot (temporalio/admin-tools, after the server is healthy): create the namespace and register the
# search attributes the pipeline engine sets (definitions/search_attributes.py) with the temporal CLI.
# Idempotent: what exists already is left alone.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  tries=$((tries + 1)); [ "$tries" -lt 60 ] || { echo "Temporal at $TEMPORAL_ADDRESS is not healthy"; exit 1; }
  sleep 2
done
if ! temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$ns" >/dev/null 2>&1; then
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$ns" --retention 30d
fi
for attr in ApeiroPipeline ApeiroSite ApeiroStep ApeiroStepType; do
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$ns" \
    --name "$attr" --type Keyword 2>&1 | grep -v "already exists" || true
done
echo "namespace $ns and search attributes ready"
