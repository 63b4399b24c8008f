#!/usr/bin/env bash
# One pinned virtual environment for the Python clients the tests run (huggingface_hub, model-signing,
# MLflow, DVC, fickling, modelscan, picklescan, xgboost-cpu and lightgbm (real model files for the pickle allow-list), in-toto-attestation, cyclonedx-bom, spdx-tools, ...):
# $CUSTOMS_TOOLS_DIR/venv, rebuilt only when scripts/deps/requirements.txt changes (the full `pip freeze`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/tools-dir.sh"
venv="$CUSTOMS_TOOLS_DIR/venv"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
stamp="$CUSTOMS_TOOLS_DIR/stamps/venv"
[[ -x "$venv/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && exit 0
py="${CUSTOMS_PYTHON:-$(command -v python3.11 || command -v python3)}"
echo "python-venv: creating $venv with $py" >&2
rm -rf "$venv"
mkdir -p "$CUSTOMS_TOOLS_DIR/stamps"
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$here/requirements.txt"
echo "$want" > "$stamp"
