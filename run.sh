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
  gzip bzip2 xz-utils zstd python3 python3-snappy iproute2 nftables
)

# Only for `./run.sh bench swarm --vs opendht`: OpenDHT's library and the -dev packages its headers
# need. Not libopendht-dev itself: it depends on libmsgpack-cxx-dev, which pulls libboost-dev 1.74
# and so removes libboost1.81-dev; its headers and msgpack's are unpacked instead (install_opendht).
OPENDHT_PACKAGES=(
  libopendht2 libgnutls28-dev libargon2-dev libasio-dev libjsoncpp-dev libhttp-parser-dev libssl-dev
  libfmt-dev nettle-dev
)
OPENDHT_ROOT="$BUILD_DIR/third_party/opendht-debs"

usage() {
  cat <<'USAGE'
usage: ./run.sh COMMAND [ARGS]
  swarm [ARGS]     install, build, and run `kadnet swarm` (64 DHT nodes on loopback: puts,
                   gets, a third killed, gets again; ARGS go to it)
  test             install, build, and run the whole test suite (non-zero exit on any failure)
  build            install and build (Release with debug info, Ninja, ccache) into build/
  bench NAME [...] run a benchmark: micro (Google Benchmark; extra args go to it),
                   swarm [--nodes 64,256] [--json] (DHT swarms on loopback TCP),
                   swarm --vs opendht [--nodes 64,256] [--json] (the same workload on kadnet,
                   over UDP unless --transport says otherwise, and on OpenDHT, in the same run:
                   both results and kadnet's ratios; installs OpenDHT for this only),
                   sim [--nodes 1000,10000,100000] [--lookups 1000] [--loss P] [--json]
                   (DHT nodes on the simulated network: build time, lookup rounds, memory),
                   latency [--seed S] [--in-order] [--json] (KCP's test: 1,000 8-byte requests
                   every 20 ms over a UDP session on the simulated network, RTT 60-125 ms,
                   10 % round-trip loss; one-way and round-trip latency, retransmits),
                   stream [--bytes N] [--loss P] [--json] (the same N bytes, default 256MiB,
                   over 127.0.0.1 through one kadnet stream, UDT, TCP and raw UDP; goodput,
                   ratios, integrity, memory),
                   broadcast [--nodes 1000,10000] [--json] (SHOUT's tree against flooding on
                   the simulated network: coverage, copies, bytes, hops, time),
                   atomic [--clients 1,8,32] [--loss P] [--json] (compare-and-swap updates
                   of one counter by contending clients on the simulated network, patch against
                   put bytes, and lock/unlock latency uncontended and with --lock-clients 8),
                   soak [--nodes 100] [--hours 6] [--churn 0.05] [--json] (hours of puts, gets,
                   updates, locks and churn on full simulated nodes: heap per node over time)
  sanitize         build into build-asan/ with ASan+UBSan and run the test suite there
  sanitize-thread  build into build-tsan/ with ThreadSanitizer and run the test suite there
                   (without the Python module: the interpreter is not instrumented)
  fuzz [SECONDS]   build the libFuzzer targets with clang and run each for SECONDS (default 30)
  deps             only install the missing Debian packages
USAGE
}

install_missing() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "run.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

as_root() {
  if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi
}

installed() {  # installed PACKAGE: true when dpkg has it installed
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# Installs what `bench swarm --vs opendht` needs, idempotently, and refuses anything that would
# install or remove a Boost package (kadnet needs libboost1.81-dev to stay). OpenDHT's headers and
# msgpack-cxx's come from their Debian packages, downloaded and unpacked into $OPENDHT_ROOT.
install_opendht() {
  local missing=() p
  for p in "${OPENDHT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    local plan
    plan=$(as_root apt-get install -s --no-install-recommends "${missing[@]}")
    if grep -E '^(Inst|Remv|Purg) libboost' <<<"$plan"; then
      echo "run.sh: installing ${missing[*]} would change the Boost packages above; not doing it" >&2
      exit 1
    fi
    echo "run.sh: installing ${missing[*]} (for the OpenDHT comparison only)"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  installed libboost1.81-dev || { echo "run.sh: libboost1.81-dev is not installed" >&2; exit 1; }
  if [ ! -f "$OPENDHT_ROOT/usr/include/opendht/dhtrunner.h" ] || [ ! -f "$OPENDHT_ROOT/usr/include/msgpack.hpp" ]; then
    # The headers must match the library: the same version of libopendht-dev as libopendht2.
    local version debs
    version=$(dpkg-query -W -f='${Version}' libopendht2)
    debs=$(mktemp -d)
    chmod 755 "$debs"  # apt's download user writes there
    (cd "$debs" && apt-get download -q "libopendht-dev=$version" libmsgpack-cxx-dev)
    mkdir -p "$OPENDHT_ROOT"
    for p in "$debs"/*.deb; do dpkg-deb -x "$p" "$OPENDHT_ROOT"; done
    rm -rf "$debs"
  fi
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
  sanitize-thread)
    install_missing
    configure build-tsan -DKADNET_SANITIZE_THREAD=ON -DKADNET_BUILD_BENCHMARKS=OFF -DKADNET_BUILD_PYTHON=OFF
    ninja -C build-tsan
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan_suppressions.txt" run_tests build-tsan
    ;;
  fuzz)
    install_missing
    seconds=${1:-30}
    configure build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DKADNET_BUILD_FUZZERS=ON -DKADNET_BUILD_TESTS=OFF -DKADNET_BUILD_BENCHMARKS=OFF -DKADNET_BUILD_PYTHON=OFF
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
    [ -n "$name" ] || { echo "run.sh bench: missing NAME (micro, swarm, sim, latency, stream, broadcast, atomic, soak)" >&2; exit 2; }
    shift
    # The swarm benchmark builds only the programs it runs.
    [ "$name" = swarm ] || build >/dev/null
    case "$name" in
      swarm)
        # ./run.sh bench swarm [--vs opendht] [--nodes 64,256] [--json] [other kadnet swarm flags]
        sizes="64,256" vs="" json="" transport="" rest=()
        while [ $# -gt 0 ]; do
          case "$1" in
            --nodes) sizes=${2:?--nodes needs a list, e.g. 64,256}; shift 2 ;;
            --vs) vs=${2:?--vs needs a system: opendht}; shift 2 ;;
            --json) json=--json; shift ;;
            --transport) transport=${2:?--transport needs tcp, udp, ws or sim}; shift 2 ;;
            *) rest+=("$1"); shift ;;
          esac
        done
        install_missing
        if [ -z "$vs" ]; then
          configure "$BUILD_DIR"
          ninja -C "$BUILD_DIR" kadnet_cli >/dev/null
          for n in ${sizes//,/ }; do
            "$BUILD_DIR/bin/kadnet" swarm --nodes "$n" --ops 1000 ${transport:+--transport "$transport"} $json "${rest[@]}"
          done
          exit 0
        fi
        [ "$vs" = opendht ] || { echo "run.sh bench swarm: --vs knows only opendht, not '$vs'" >&2; exit 2; }
        install_opendht
        configure "$BUILD_DIR" -DKADNET_OPENDHT_ROOT="$PWD/$OPENDHT_ROOT"
        ninja -C "$BUILD_DIR" kadnet_cli kadnet_bench_opendht >/dev/null
        # Both over UDP unless told otherwise: OpenDHT speaks only UDP.
        transport=${transport:-udp}
        results=$(mktemp -d)
        status=0
        for n in ${sizes//,/ }; do
          # Each exits non-zero when some operation failed; that is a result to show, not a stop.
          "$BUILD_DIR/bin/kadnet" swarm --nodes "$n" --ops 1000 --transport "$transport" --json "${rest[@]}" \
            >"$results/kadnet" || status=1
          "$BUILD_DIR/bin/kadnet_bench_opendht" --nodes "$n" --ops 1000 --json "${rest[@]}" >"$results/opendht" || true
          python3 benchmarks/swarm_opendht/compare.py "$results/kadnet" "$results/opendht" $json
        done
        rm -rf "$results"
        exit "$status"
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
      atomic)
        # ./run.sh bench atomic [--nodes 64] [--clients 1,8,32] [--updates 20] [--loss P] [--json]
        # [--lock-cycles 50] [--lock-clients 8] [--lock-rounds 10] [--hold-ms 100]
        "$BUILD_DIR/bin/kadnet_bench_atomic" "$@"
        ;;
      soak)
        # ./run.sh bench soak [--nodes 100] [--hours 6] [--churn 0.05] [--seed S] [--json]
        "$BUILD_DIR/bin/kadnet_bench_soak" "$@"
        ;;
      micro)
        out="$BUILD_DIR/bench_micro.json"
        "$BUILD_DIR/bin/kadnet_bench_micro" --benchmark_out="$out" --benchmark_out_format=json "$@"
        python3 benchmarks/micro_targets.py "$out"
        ;;
      *) echo "run.sh bench: unknown benchmark '$name' (known: micro, swarm, sim, latency, stream, broadcast, atomic, soak)" >&2; exit 2 ;;
    esac
    ;;
  swarm)
    build
    "$BUILD_DIR/bin/kadnet" swarm "$@"
    ;;
  help|-h|--help) usage ;;
  *) echo "run.sh: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
esac
