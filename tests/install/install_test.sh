#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, builds the README's example as an outside
# project against it with find_package(kadnet), and runs it.
set -euo pipefail
build_dir=$1 source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/tests/install/consumer" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DKADNET_EXAMPLE="$source_dir/examples/echo_plugin.cpp" \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$work/build" >/dev/null
output=$("$work/build/consumer")
echo "$output"
grep -q "reply: HELLO, KADNET" <<<"$output"
