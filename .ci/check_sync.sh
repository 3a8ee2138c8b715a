#!/usr/bin/env bash
# Export and clean the notebooks in a scratch copy; the package and notebooks here must match (both are checked).
set -euo pipefail
bin=${1:-.venv/bin}; bin=$(cd "$bin" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r nbs settings.ini "$tmp"/; mkdir "$tmp/bayespilot"
(cd "$tmp" && "$bin/nbdev_export" && "$bin/nbdev_clean" >/dev/null)
status=0
if ! diff -r -q -x __pycache__ -x '*.pyc' "$tmp/bayespilot" bayespilot; then
  echo "package drift: bayespilot/ differs from what nbdev_export writes from nbs/" >&2; status=1
fi
if ! diff -r -q -x '.ipynb_checkpoints' "$tmp/nbs" nbs; then
  echo "notebook drift: nbs/ differs from its nbdev_clean output (stale cell ids, outputs or metadata)" >&2; status=1
fi
if [ $status -ne 0 ]; then echo "out of sync: run 'make export' and commit nbs/ and bayespilot/ together" >&2; exit 1; fi
echo "notebooks and package in sync"
