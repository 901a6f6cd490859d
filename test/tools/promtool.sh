#!/usr/bin/env bash
# Prints the path of a promtool binary (Prometheus 2.42) on stdout, and nothing else.
#
#   1. $PROMTOOL, if set (must be an executable file; its version is not checked);
#   2. `promtool` on PATH, if `promtool --version` says 2.42;
#   3. otherwise promtool from Debian's `prometheus` package, version 2.42.0 (any Debian
#      revision of it: 2.42.0+ds-5+deb12uN), extracted once into <repo>/.tools/prometheus with
#      `apt-get download` + `dpkg-deb -x`: nothing is installed system-wide, no service starts,
#      and only that one package (about 19 MB) is downloaded.
#
# Why Debian's package and not `go install .../cmd/promtool`: the Go build pulls Prometheus'
# whole dependency graph (every service discovery) and takes minutes on CI's two cores; the
# .deb is one download. Errors go to stderr with a non-zero exit status. Used by `make test`
# and .ci/run; test/deploy reads $PROMTOOL or the copy in .tools/.
set -euo pipefail

readonly WANT="2.42.0"
readonly PKG="prometheus"

die() {
  echo "promtool.sh: $*" >&2
  exit 1
}

# is_wanted BIN: true if BIN runs and reports version 2.42.0 (Debian adds "+ds").
is_wanted() {
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  [[ "$out" =~ ^promtool,\ version\ ${WANT//./\\.}([+ ]) ]]
}

if [[ -n "${PROMTOOL:-}" ]]; then
  [[ -f "$PROMTOOL" && -x "$PROMTOOL" ]] || die "PROMTOOL=$PROMTOOL is not an executable file"
  echo "$PROMTOOL"
  exit 0
fi

if path_tool="$(command -v promtool 2>/dev/null)" && is_wanted "$path_tool"; then
  echo "$path_tool"
  exit 0
fi

# Repository root: the nearest directory above this script that holds go.mod.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
while [[ ! -f "$root/go.mod" ]]; do
  [[ "$root" != "/" ]] || die "cannot find the repository root (go.mod) above $(dirname "${BASH_SOURCE[0]}")"
  root="$(dirname "$root")"
done

target="$root/.tools/prometheus"
bin="$target/usr/bin/promtool"
if [[ -x "$bin" ]] && is_wanted "$bin"; then
  echo "$bin"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: set PROMTOOL to a promtool $WANT binary"
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found: set PROMTOOL to a promtool $WANT binary"

# candidates: the versions of $PKG apt knows whose upstream version is $WANT, newest first.
candidates() {
  apt-cache madison "$PKG" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
    grep -E "^${WANT//./\\.}\+" || true
}
version="$(candidates | head -n1)"
if [[ -z "$version" ]]; then
  # The package lists may be missing (a fresh machine) or stale.
  apt-get update -qq >&2 || die "apt-get update failed"
  version="$(candidates | head -n1)"
fi
[[ -n "$version" ]] || die "Debian has no $PKG $WANT here (apt-cache madison $PKG); update WANT in $0 and the alert rules' test"

mkdir -p "$root/.tools"
tmp="$(mktemp -d "$root/.tools/prometheus.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # mktemp -d creates 0700

echo "promtool.sh: extracting promtool from $PKG=$version into $target" >&2
(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$PKG=$version" >&2) || die "apt-get download $PKG=$version failed"
deb="$(ls "$tmp"/"$PKG"_*.deb)"
mkdir "$tmp/root"
dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
# Keep promtool only: the server binary, web assets and docs are not needed.
find "$tmp/root" -mindepth 1 -maxdepth 1 ! -name usr -exec rm -rf {} +
find "$tmp/root/usr" -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf {} +
find "$tmp/root/usr/bin" -mindepth 1 ! -name promtool -exec rm -f {} +
is_wanted "$tmp/root/usr/bin/promtool" || die "the extracted promtool does not report version $WANT"

# Replace a stale or broken copy; if another run finished first, keep its copy.
if [[ -e "$target" ]] && ! { [[ -x "$bin" ]] && is_wanted "$bin"; }; then
  rm -rf "$target"
fi
if ! mv -T "$tmp/root" "$target" 2>/dev/null; then
  [[ -x "$bin" ]] || die "could not move promtool into $target"
fi
is_wanted "$bin" || die "$bin does not report version $WANT"
echo "$bin"
