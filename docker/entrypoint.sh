#!/bin/sh
# Container entry: settings come from EDGELLM_* env; extra arguments are passed on as CLI flags.
# EDGELLM_MODEL_SOURCE may name a file under /models, an hf: URI, or a synthetic: preset.
set -eu
cd "$(dirname "$0")/.."
exec node --import tsx src/cli.ts "$@"
