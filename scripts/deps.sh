#!/bin/sh
# Install the Debian packages SAM needs to build and test, only those missing.
# Runs apt-get as root (directly, or through sudo when available).
# `deps.sh --test` adds what only the tests need: the arm64 cross compiler
# and qemu that check the NEON kernels (`make kernel-check`).
set -eu
PKGS="build-essential pkg-config curl clang libclang-rt-14-dev valgrind libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev libespeak-ng-dev espeak-ng-data wrk libtesseract-dev libleptonica-dev tesseract-ocr-eng imagemagick fonts-dejavu-core"
[ "${1:-}" = "--test" ] && PKGS="$PKGS gcc-aarch64-linux-gnu qemu-user-static"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# node + npm run the official OpenAI client in the api tests; Debian's will do
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
