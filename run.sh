#!/usr/bin/env bash
# kadnet's one entry point: installs what is missing (Debian 12 packages), builds, tests,
# benchmarks. Usage: ./run.sh help
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${KADNET_BUILD_DIR:-build}
PACKAGES=(
  cmake ninja-build ccache g++ pkg-config clang libclang-rt-14-dev
  libboost1.81-dev libsodium-dev zlib1g-dev libbz2-dev liblzma-dev libzstd-dev libsnappy-dev
  libgtest-dev libgmock-dev libbenchmark-dev libudt-dev libsqlite3-dev pybind11-dev python3-dev
  gzip bzip2 xz-utils zstd python3 python3-snappy iproute2
)

usage() {
  cat <<'USAGE'
usage: ./run.sh COMMAND [ARGS]
  swarm [ARGS]     install, build, and run `kadnet swarm` (64 DHT nodes on loopback: puts,
                   gets, a third killed, gets again; ARGS go to it)
  test             install, build, and run the whole test suite (non-zero exit on any failure)
  build            install and build (Release with debug info, Ninja, ccache) into build/
  bench NAME [...] run a benchmark: micro (Google Benchmark; extra args go to it),
                   swarm [--nodes 64,256] [--json] (DHT swarms on loopback TCP),
                   sim [--nodes 1000,10000,100000] [--lookups 1000] [--loss P] [--json]
                   (DHT nodes on the simulated network: build time, lookup rounds, memory),
                   latency [--seed S] [--in-order] [--json] (KCP's test: 1,000 8-byte requests
                   every 20 ms over a UDP session on the simulated network, RTT 60-125 ms,
                   10 % round-trip loss; one-way and round-trip latency, retransmits),
                   stream [--bytes N] [--loss P] [--json] (the same N bytes, default 256MiB,
                   over 127.0.0.1 through one kadnet stream, UDT, TCP and raw UDP; goodput,
                   ratios, integrity, memory)
  sanitize         build into build-asan/ with ASan+UBSan and run the test suite there
  fuzz [SECONDS]   build the libFuzzer targets with clang and run each for SECONDS (default 30)
  deps             only install the missing Debian packages
USAGE
}

install_missing() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "run.sh: installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure() {  # configure DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "$@" >/dev/null
}

build() {
  install_missing
  configure "$BUILD_DIR"
  ninja -C "$BUILD_DIR"
}

run_tests() {  # run_tests DIR
  ctest --test-dir "$1" --output-on-failure -j "$(nproc)" --timeout 600
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  deps) install_missing ;;
  build) build ;;
  test)
    build
    run_tests "$BUILD_DIR"
    ;;
  sanitize)
    install_missing
    configure build-asan -DKADNET_SANITIZE=ON -DKADNET_BUILD_BENCHMARKS=OFF
    ninja -C build-asan
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_tests build-asan
    ;;
  fuzz)
    install_missing
    seconds=${1:-30}
    configure build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DKADNET_BUILD_FUZZERS=ON -DKADNET_BUILD_TESTS=OFF -DKADNET_BUILD_BENCHMARKS=OFF
    ninja -C build-fuzz
    for fuzzer in build-fuzz/bin/*_fuzzer; do
      corpus=$(mktemp -d)
      tests/fuzz/seed_corpus.sh "$(basename "$fuzzer")" "$corpus"
      echo "== $(basename "$fuzzer") for ${seconds}s"
      "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
      rm -rf "$corpus"
    done
    ;;
  bench)
    name=${1:-}
    [ -n "$name" ] || { echo "run.sh bench: missing NAME (micro, swarm, sim, latency, stream, broadcast)" >&2; exit 2; }
    shift
    build >/dev/null
    case "$name" in
      swarm)
        # ./run.sh bench swarm [--nodes 64,256] [--json] [other kadnet swarm flags]
        sizes="64,256" rest=()
        while [ $# -gt 0 ]; do
          case "$1" in
            --nodes) sizes=${2:?--nodes needs a list, e.g. 64,256}; shift 2 ;;
            *) rest+=("$1"); shift ;;
          esac
        done
        for n in ${sizes//,/ }; do
          "$BUILD_DIR/bin/kadnet" swarm --nodes "$n" --ops 1000 "${rest[@]}"
        done
        ;;
      sim)
        # ./run.sh bench sim [--nodes 1000,10000,100000] [--json] [--loss P] [other flags of
        # kadnet_bench_sim]; each size runs in a process of its own.
        "$BUILD_DIR/bin/kadnet_bench_sim" "$@"
        ;;
      latency)
        # ./run.sh bench latency [--seed S] [--in-order] [--json] [other flags of
        # kadnet_bench_latency, e.g. --loss 0.1 --messages 1000]
        "$BUILD_DIR/bin/kadnet_bench_latency" "$@"
        ;;
      stream)
        # ./run.sh bench stream [--bytes N] [--loss P] [--json] [other flags of
        # kadnet_bench_stream: --reorder R, --seed S, --timeout S, --window U, --only LIST]
        "$BUILD_DIR/bin/kadnet_bench_stream" "$@"
        ;;
      broadcast)
        # ./run.sh bench broadcast [--nodes 1000,10000] [--transport sim] [--json] [other flags of
        # kadnet_bench_broadcast: --shouts N, --payload B, --churn F, --loss P, --seed S]
        "$BUILD_DIR/bin/kadnet_bench_broadcast" "$@"
        ;;
      micro)
        out="$BUILD_DIR/bench_micro.json"
        "$BUILD_DIR/bin/kadnet_bench_micro" --benchmark_out="$out" --benchmark_out_format=json "$@"
        python3 benchmarks/micro_targets.py "$out"
        ;;
      *) echo "run.sh bench: unknown benchmark '$name' (known: micro, swarm, sim, latency, stream, broadcast)" >&2; exit 2 ;;
    esac
    ;;
  swarm)
    build
    "$BUILD_DIR/bin/kadnet" swarm "$@"
    ;;
  help|-h|--help) usage ;;
  *) echo "run.sh: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
esac
