#!/usr/bin/env bash
# Prints the directory that holds the official OpenAI and Anthropic Python SDKs, pinned below,
# for end-to-end tests that run real client code (PYTHONPATH=<dir>), and nothing else.
#
# Installed once with `python3 -m pip install --target <repo>/.tools/python-sdks` (git-ignored;
# no root, no virtualenv). Errors go to stderr with a non-zero exit status. Used by CI
# (.ci/run) and test/testutil (TOLLGATE_INSTALL_SDKS=1). Safe to run concurrently.
set -euo pipefail

readonly PINS=("openai==3.60.0" "anthropic==2.16.0")

die() {
  echo "python-sdks.sh: $*" >&2
  exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
while [[ ! -f "$root/go.mod" ]]; do
  [[ "$root" != "/" ]] || die "cannot find the repository root (go.mod)"
  root="$(dirname "$root")"
done
target="$root/.tools/python-sdks"
stamp="$target/.pins"

if [[ -f "$stamp" && "$(cat "$stamp")" == "${PINS[*]}" ]]; then
  echo "$target"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found"
python3 -m pip --version >/dev/null 2>&1 || die "pip for python3 not found (Debian: apt-get install python3-pip)"
mkdir -p "$root/.tools"
tmp="$(mktemp -d "$root/.tools/python-sdks.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
echo "python-sdks.sh: installing ${PINS[*]} into $target" >&2
python3 -m pip install --quiet --disable-pip-version-check --no-input --target "$tmp" "${PINS[@]}" >&2 \
  || die "pip install ${PINS[*]} failed"
PYTHONPATH="$tmp" python3 -c 'import openai, anthropic' || die "installed but cannot import openai and anthropic"
echo "${PINS[*]}" >"$tmp/.pins"
rm -rf "$target"
mv -T "$tmp" "$target" 2>/dev/null || [[ -f "$stamp" ]] || die "could not move the install into $target"
echo "$target"
