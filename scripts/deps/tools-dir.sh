# Sourced by the dependency scripts: where pinned test tools live (Go clients in bin/, the Python
# virtual environment in venv/). Outside the checkout, so every clone on a machine shares one build.
# test/helpers/tools.ts computes the same path.
if [[ -z "${CUSTOMS_TOOLS_DIR:-}" ]]; then
  if [[ -w /var/cache ]]; then CUSTOMS_TOOLS_DIR=/var/cache/customs-tools; else CUSTOMS_TOOLS_DIR="$HOME/.cache/customs-tools"; fi
fi
export CUSTOMS_TOOLS_DIR
