#!/bin/sh
# Builds the demo's bin/hello from hello.S, byte-reproducibly: no build id, symbols stripped,
# nothing from the build machine or the time recorded. Needs GNU binutils (as, ld) only.
# Run from anywhere; writes the binary into the demo store path and checks it with cmp if asked:
#   closures/demo/src/build.sh          # rebuild bin/hello
#   closures/demo/src/build.sh --check  # rebuild into a temp dir and cmp against the committed one
set -eu
src=$(cd "$(dirname "$0")" && pwd)
bin="$src/../root/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0/bin/hello"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 -o "$tmp/hello.o" "$src/hello.S"
ld -static -n -s --build-id=none -o "$tmp/hello" "$tmp/hello.o"
chmod 0755 "$tmp/hello"
if [ "${1:-}" = "--check" ]; then
  cmp "$tmp/hello" "$bin" && echo "bin/hello matches hello.S"
else
  cp "$tmp/hello" "$bin" && chmod 0755 "$bin"
fi
