#!/bin/sh
# install.sh — install rsm (remote-shell-mcp) from a release, verify it, register it.
#
#   curl -fsSL https://github.com/remote-shell-mcp/remote-shell-mcp/releases/latest/download/install.sh | sh
#   curl -fsSL …/install.sh | sh -s -- --version v0.1.0 --dir ~/bin --no-setup
#
# What it does:
#   1. picks the asset for this machine: rsm-<os>-<arch>, os = linux | darwin,
#      arch = x64 | arm64 (Windows: download rsm-windows-x64.exe from the release page);
#   2. downloads it and SHA256SUMS with curl (or wget) from
#        $RSM_BASE_URL/latest/download/<asset>        (no --version: the newest release)
#        $RSM_BASE_URL/download/<tag>/<asset>         (--version 0.1.0 or v0.1.0 → tag v0.1.0)
#      where RSM_BASE_URL defaults to https://github.com/$RSM_REPO/releases — the URL scheme
#      GitHub serves release assets under — and RSM_REPO to remote-shell-mcp/remote-shell-mcp;
#   3. refuses to install unless the SHA-256 of the download matches its SHA256SUMS line
#      (sha256sum, else shasum -a 256);
#   4. installs rsm into --dir, else /usr/local/bin when it is writable, else ~/.local/bin
#      (the first choice can be moved with RSM_SYSTEM_BIN_DIR);
#   5. runs `rsm setup` to register rsm in the MCP clients found (skip with --no-setup).
#      With --yes it runs `rsm setup --yes`; without, on a terminal, setup shows the changes
#      and asks, and with no terminal it applies them (`--yes`) as the installer was asked to.
#
# Needs: POSIX sh and utilities (uname, mktemp, awk, cut, tr), curl or wget, sha256sum or shasum.
set -eu

REPO="${RSM_REPO:-remote-shell-mcp/remote-shell-mcp}"
BASE_URL="${RSM_BASE_URL:-https://github.com/$REPO/releases}"
SYSTEM_BIN="${RSM_SYSTEM_BIN_DIR:-/usr/local/bin}"

version=""
dir=""
setup=1
yes=0

say() { printf '%s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
Usage: install.sh [--version VERSION] [--dir DIR] [--no-setup] [--yes]

  --version VERSION  install this release (e.g. v0.1.0); default: the latest
  --dir DIR          install rsm into DIR; default /usr/local/bin if writable,
                     else ~/.local/bin
  --no-setup         do not run `rsm setup` afterwards
  --yes, -y          no questions: run `rsm setup --yes`
  --help, -h         this help

Environment: RSM_BASE_URL (release base URL), RSM_REPO (owner/name on GitHub).
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --version) [ $# -ge 2 ] || die "--version needs a value"; version="$2"; shift 2 ;;
    --version=*) version="${1#--version=}"; shift ;;
    --dir) [ $# -ge 2 ] || die "--dir needs a value"; dir="$2"; shift 2 ;;
    --dir=*) dir="${1#--dir=}"; shift ;;
    --no-setup) setup=0; shift ;;
    --yes | -y) yes=1; shift ;;
    --help | -h) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

# --- what to download ------------------------------------------------------------------
case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  MINGW* | MSYS* | CYGWIN*)
    die "on Windows, download rsm-windows-x64.exe from $BASE_URL and put it on PATH" ;;
  *) die "unsupported OS: $(uname -s) (builds exist for Linux and macOS)" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported CPU: $(uname -m) (builds exist for x86_64 and arm64)" ;;
esac
asset="rsm-$os-$arch"

if [ -n "$version" ]; then
  case "$version" in
    v*) tag="$version" ;;
    *) tag="v$version" ;;
  esac
  url="$BASE_URL/download/$tag"
else
  tag="latest"
  url="$BASE_URL/latest/download"
fi

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 2 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget found; install one of them and retry"
fi

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die "neither sha256sum nor shasum found; cannot verify the download"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rsm-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT INT TERM

say "Downloading $asset ($tag) from $url"
fetch "$url/$asset" "$tmp/$asset" || die "cannot download $url/$asset"
fetch "$url/SHA256SUMS" "$tmp/SHA256SUMS" || die "cannot download $url/SHA256SUMS"

# --- verify ----------------------------------------------------------------------------
expected="$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/SHA256SUMS")"
[ -n "$expected" ] || die "SHA256SUMS has no line for $asset; refusing to install"
actual="$(sha256 "$tmp/$asset")"
expected="$(printf '%s' "$expected" | tr 'A-F' 'a-f')"
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $asset: expected $expected, got $actual; refusing to install"
fi
say "Verified SHA-256 $actual"

# --- install ---------------------------------------------------------------------------
if [ -z "$dir" ]; then
  if [ -d "$SYSTEM_BIN" ] && [ -w "$SYSTEM_BIN" ]; then
    dir="$SYSTEM_BIN"
  else
    dir="$HOME/.local/bin"
  fi
fi
mkdir -p "$dir" || die "cannot create $dir"
[ -w "$dir" ] || die "cannot write to $dir; choose another with --dir"
chmod 755 "$tmp/$asset"
cp "$tmp/$asset" "$dir/.rsm.new.$$" || die "cannot write to $dir"
mv -f "$dir/.rsm.new.$$" "$dir/rsm" || die "cannot install $dir/rsm"
say "Installed $dir/rsm ($("$dir/rsm" version 2>/dev/null || echo "version unknown"))"

case ":$PATH:" in
  *":$dir:"*) ;;
  *) say "Note: $dir is not on your PATH; add it, e.g.: export PATH=\"$dir:\$PATH\"" ;;
esac

# --- register in MCP clients -----------------------------------------------------------
if [ "$setup" -eq 1 ]; then
  if [ "$yes" -eq 0 ] && [ -t 1 ] && (: </dev/tty) 2>/dev/null; then
    "$dir/rsm" setup </dev/tty || say "rsm setup did not complete; run it again: $dir/rsm setup"
  else
    "$dir/rsm" setup --yes || say "rsm setup did not complete; run it again: $dir/rsm setup"
  fi
else
  say "Skipped client setup; run it later: $dir/rsm setup"
fi
