#!/usr/bin/env bash
# Installs the API fuzzer (schemathesis, a pinned version from PyPI) into a
# virtualenv of its own under ~/.cache/dbaas-operator and prints the path of
# its `st` command. crates/server/tests/fuzz.rs runs it (DBAAS_SCHEMATHESIS);
# hack/test.sh calls this before `cargo test`. Needs python3 >= 3.9 with venv.
set -euo pipefail
version=4.32.5
venv=${XDG_CACHE_HOME:-$HOME/.cache}/dbaas-operator/schemathesis-$version
st=$venv/bin/st
if [[ ! -x $st ]] || ! "$st" --version 2>/dev/null | grep -qF "$version"; then
  command -v python3 >/dev/null || { echo "ensure-fuzz-tools: python3 is missing" >&2; exit 1; }
  echo "ensure-fuzz-tools: installing schemathesis==$version into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
fi
echo "$st"
