#!/bin/sh
# One-shot: register the search attributes the pipeline engine sets (definitions/search_attributes.py).
# Idempotent: an attribute that exists already is left alone.
set -eu
for attr in ApeiroPipeline ApeiroSite ApeiroStep ApeiroStepType; do
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" \
    --name "$attr" --type Keyword 2>&1 | grep -v "already exists" || true
done
