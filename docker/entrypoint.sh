#!/bin/sh
# Container entry: settings come from EDGELLM_* env; extra arguments are passed on as CLI flags.
#   EDGELLM_PROFILE     a profile from config/ (edge-1gb, edge-4gb, server) or a path to a YAML file
#   EDGELLM_MODEL_SOURCE a .gguf in the models volume (a bare file name is looked up there), an
#                        hf: URI, or a synthetic: preset; empty = the offline demo model
# The server runs compiled JavaScript, as `npm start` does: the image has dist/ (built in the
# Dockerfile's builder stage) and no src/, so node starts dist/cli.js directly; in a source
# checkout scripts/start.mjs first brings dist/ up to date with src/ (scripts/build-dist.mjs).
# exec: node replaces this shell, so the SIGTERM that tini forwards reaches the server's drain.
set -eu
cd "$(dirname "$0")/.."
profile="${EDGELLM_PROFILE:-}"
# Not a config key: the config loader rejects EDGELLM_* names it does not know.
unset EDGELLM_PROFILE
if [ -n "$profile" ]; then
  case "$profile" in
    */*|*.yaml|*.yml) file="$profile" ;;
    *) file="config/$profile.yaml" ;;
  esac
  if [ ! -f "$file" ]; then
    echo "edgellm: EDGELLM_PROFILE=$profile: no such profile ($file); profiles: $(ls config | sed -n 's/\.yaml$//p' | tr '\n' ' ')" >&2
    exit 2
  fi
  set -- --config "$file" "$@"
fi
if [ -d src ]; then
  exec node --enable-source-maps scripts/start.mjs "$@"
fi
exec node --enable-source-maps dist/cli.js "$@"
