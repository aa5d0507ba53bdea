#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, builds the README's example as an outside
# project against it with find_package(kadnet), and runs it.
set -euo pipefail
build_dir=$1 source_dir=$2
# A sanitized build's libraries need the C program built with the same sanitizer.
read -r -a sanitizer_flags <<<"${3:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/log"
# Quiet when it works; the whole log when a step fails.
run() { "$@" >>"$log" 2>&1 || { cat "$log"; echo "install test: '$*' failed" >&2; exit 1; }; }
run cmake --install "$build_dir" --prefix "$work/prefix"
# Installed headers name each other "kadnet/...", so that an application's own "core/..." or
# "dht/..." headers can neither shadow them nor be shadowed.
if stray=$(grep -rnE '#include "' "$work/prefix/include/kadnet" | grep -vE '#include "kadnet/'); then
  echo "$stray"
  echo "install test: installed headers include files outside kadnet/" >&2
  exit 1
fi
run cmake -S "$source_dir/tests/install/consumer" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DKADNET_EXAMPLE="$source_dir/examples/echo_plugin.cpp" \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
run cmake --build "$work/build"
output=$("$work/build/consumer")
echo "$output"
grep -q "reply: HELLO, KADNET" <<<"$output"

# The C API as a C program sees it: the installed header and libkadnet_c alone.
c_lib=$(dirname "$(find "$work/prefix" -name 'libkadnet_c.so' | head -1)")
run cc -std=c11 -Wall -pthread "${sanitizer_flags[@]}" -I "$work/prefix/include/kadnet" "$source_dir/tests/c/c_api_test.c" \
  -L "$c_lib" -lkadnet_c -Wl,-rpath,"$c_lib" -o "$work/c_api_test"
"$work/c_api_test"

# The Python module where the install put it.
if module=$(find "$work/prefix" -name 'kadnet*.so' -path '*dist-packages*' | head -1) && [ -n "$module" ]; then
  PYTHONPATH=$(dirname "$module") python3 -c 'import kadnet; n = kadnet.Node(listen=["tcp://127.0.0.1:0"]); print("python", n.addresses[0]); n.stop()'
fi
