#!/usr/bin/env bash
# The fraud-detection seed scenario, end to end, with the tools ML teams already use:
# DVC tracks the data, MLflow logs the training, OpenSSF model signing signs the model,
# customs stores all of it; then the data changes, a second run is pushed to prod, the
# second dataset turns out poisoned, and the incident runbook's drill quarantines it and
# rolls prod back. Run from anywhere: bash examples/fraud-detection/run.sh
#
# Needs: node and a built customs (npm run build), git, openssl, and the pinned Python tools
# (scripts/test-deps.sh puts mlflow-skinny, dvc, model-signing, pandas and scikit-learn in
# $CUSTOMS_TOOLS_DIR/venv). Nothing is downloaded. WORK=<dir> keeps the files (default: a
# temporary directory, removed at the end).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tools="${CUSTOMS_TOOLS_DIR:-/var/cache/customs-tools}"
# The pinned tools first on PATH (python, dvc, model_signing), when they are there.
[ -d "$tools/venv/bin" ] && export PATH="$tools/venv/bin:$PATH"
keep="${WORK:+yes}"
work="$(cd "${WORK:-$(mktemp -d)}" && pwd)"
export DVC_NO_ANALYTICS=1 MLFLOW_ALLOW_FILE_STORE=true
export GIT_AUTHOR_NAME=ml GIT_AUTHOR_EMAIL=ml@example.com GIT_COMMITTER_NAME=ml GIT_COMMITTER_EMAIL=ml@example.com
export MLFLOW_TRACKING_URI="file:$work/repo/mlruns"

customs() { node "$root/bin/customs.js" "$@"; }
say() { printf '\n## %s\n' "$*"; }
# Prints a command (with $work shortened to $WORK, arguments with spaces quoted); `show` also runs it.
print_cmd() {
  local line="" a
  for a in "$@"; do [[ "$a" == *" "* ]] && a="\"$a\""; line+="${line:+ }$a"; done
  printf '$ %s\n' "${line//$work/\$WORK}"
}
show() {
  print_cmd "$@"
  "$@"
}

server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT

say "0. A customs server that trusts two keys: the team's signing key and its model-signing key"
mkdir -p "$work/keys" "$work/data/trust/keys"
customs keygen --key "$work/keys/ml.key" --data "$work/data" >/dev/null
openssl ecparam -name secp384r1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$work/keys/model-signing.pem"
openssl ec -in "$work/keys/model-signing.pem" -pubout -out "$work/keys/model-signing.pub" 2>/dev/null
cp "$work/keys/model-signing.pub" "$work/data/trust/keys/model-signing.pub"
# node itself in the background (not the customs function, which would be a subshell): $! is the server, and the cleanup stops it.
node "$root/bin/customs.js" serve --listen 127.0.0.1:0 --data "$work/data" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do grep -q '"msg":"listening"' "$work/server.log" 2>/dev/null && break; sleep 0.1; done
export CUSTOMS_URL="$(grep -o '"url":"[^"]*"' "$work/server.log" | head -1 | cut -d'"' -f4)"
export CUSTOMS_TOKEN="$(cat "$work/data/admin-token")"
echo "customs at $CUSTOMS_URL (default policy: a signature by a key in <data>/trust/keys)"

say "1. The training repository: code in git, data tracked by DVC"
mkdir -p "$work/repo/data"
cp "$here/train_mlflow.py" "$work/repo/"
cp "$here/data/transactions.csv" "$work/repo/data/"
cd "$work/repo"
git init -q -b main
git remote add origin https://git.example/ml/fraud-detection.git
printf 'mlruns/\n' > .gitignore
dvc init -q
dvc config core.analytics false
show dvc add -q data/transactions.csv
git add -A && git commit -qm "transactions v1, tracked by DVC"

# One training round: MLflow run, model_signing over the logged model, customs push of the
# DVC-tracked dataset and of the model (run, signature, dataset, code), to the prod tag.
round() {
  local version="$1"
  say "$version: train (MLflow), sign (model_signing), push (customs)"
  print_cmd python train_mlflow.py --data data/transactions.csv
  run_id="$(python train_mlflow.py --data data/transactions.csv | tail -1)"
  echo "mlflow run $run_id"
  local meta model_dir
  meta="$(grep -l "source_run_id: $run_id" mlruns/*/models/*/meta.yaml | head -1)"
  model_dir="$(dirname "$meta")/artifacts"
  print_cmd model_signing sign key --private_key "$work/keys/model-signing.pem" --signature "$work/model-$version.sig" "${model_dir#"$work"/repo/}"
  model_signing sign key --private_key "$work/keys/model-signing.pem" --signature "$work/model-$version.sig" "$model_dir" | tail -1
  local push_dataset=(customs push dataset data/transactions.csv --dvc --to "datasets/transactions:$version" --sign "$work/keys/ml.key")
  print_cmd "${push_dataset[@]}"
  dataset="$("${push_dataset[@]}" 2> "$work/push-dataset.err")"
  grep '^dvc ' "$work/push-dataset.err" || true
  echo "$dataset"
  local push_model=(customs push model --mlflow-run "$run_id" --model-signature "$work/model-$version.sig"
    --dataset "datasets/transactions:$version" --code . --sign "$work/keys/ml.key" --to models/fraud:prod)
  print_cmd "${push_model[@]}"
  model="$("${push_model[@]}" 2> "$work/push-model.err")"
  grep -E '^(mlflow|referrer .*model_signing)' "$work/push-model.err" || true
  echo "$model"
}

round v1
v1_model="${model#*@}"
v1_md5="$(awk '/md5:/{print $3}' data/transactions.csv.dvc)"

say "2. The data changes: five fraud rows relabelled as legitimate (unknowingly poisoned)"
awk -F, 'BEGIN{OFS=","} NR>1 && $7==1 && n<5 {$7=0; n++} {print}' data/transactions.csv > data/t.tmp && mv data/t.tmp data/transactions.csv
show dvc add -q data/transactions.csv
git add -A && git commit -qm "transactions v2: relabelled"

round v2
v2_model="${model#*@}"
v2_md5="$(awk '/md5:/{print $3}' data/transactions.csv.dvc)"

say "3. What prod is, and every version it has been: both DVC versions, both MLflow runs, both commits"
show customs lineage models/fraud:prod

say "4. The incident (docs/incident-runbook.md): the v2 data is poisoned. Who consumed it, by its DVC md5?"
show customs lineage --consumers "md5:$v2_md5"
show customs audit verify
say "Containment: quarantine everything built from it and roll prod back"
show customs quarantine --material "md5:$v2_md5" --rollback --reason "INC-1042: relabelled training data"

say "5. Prod serves v1 again; v2 is refused everywhere"
show customs pull models/fraud:prod "$work/serving" 2>/dev/null
if customs pull "models/fraud@$v2_model" "$work/refused" > "$work/refused.out" 2>&1; then
  echo "UNEXPECTED: the quarantined model was served" >&2
  exit 1
fi
echo "\$ customs pull models/fraud@$v2_model \$WORK/refused"
grep -m1 '^error' "$work/refused.out"
echo "prod was ${v2_model}, is ${v1_model} again (dvc md5 v1 ${v1_md5}, v2 ${v2_md5})"
