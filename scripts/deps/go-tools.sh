#!/usr/bin/env bash
# Builds the pinned Go clients of scripts/deps/go-tools.txt into $CUSTOMS_TOOLS_DIR/bin, once per machine:
# a tool is rebuilt only when its version stamp differs. Each is built from a throwaway module with
# `go get pkg@version` + `go build` (not `go install pkg@version`, which asks the module proxy for the
# module's version list to look for deprecations, and the proxy refuses that list for some modules, notation).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/tools-dir.sh"
command -v go >/dev/null || { echo "go-tools: go is not installed (Go >= 1.26 is needed for the real-client tests)" >&2; exit 1; }
mkdir -p "$CUSTOMS_TOOLS_DIR/bin" "$CUSTOMS_TOOLS_DIR/stamps"
export GOFLAGS=-buildvcs=false
# A fourth column `test` builds the package's tests as one binary (`go test -c`): the OCI conformance suite.
while read -r name pkg version kind; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  stamp="$CUSTOMS_TOOLS_DIR/stamps/go-$name"
  if [[ -x "$CUSTOMS_TOOLS_DIR/bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$pkg@$version" ]]; then continue; fi
  echo "go-tools: building $name ($pkg@$version${kind:+, $kind})" >&2
  work="$(mktemp -d)"
  if [[ "$kind" == test ]]; then
    get=(go get -t "$pkg@$version"); build=(go test -c -trimpath -o "$CUSTOMS_TOOLS_DIR/bin/$name" "$pkg")
  else
    get=(go get "$pkg@$version"); build=(go build -trimpath -o "$CUSTOMS_TOOLS_DIR/bin/$name" "$pkg")
  fi
  (cd "$work" && go mod init "customs-tools/$name" >/dev/null 2>&1 \
    && "${get[@]}" >/dev/null 2>&1 \
    && "${build[@]}") \
    || { echo "go-tools: building $name failed; rerun: (cd $work && ${get[*]} && ${build[*]})" >&2; exit 1; }
  rm -rf "$work"
  echo "$pkg@$version" > "$stamp"
done < "$here/go-tools.txt"
