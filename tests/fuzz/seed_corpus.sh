#!/usr/bin/env bash
# Writes a seed corpus for one libFuzzer target of tests/fuzz into a directory.
# Usage: tests/fuzz/seed_corpus.sh FUZZER_NAME DIR      (run.sh fuzz calls it for each target)
#
# Seeds come from the wire test vectors (tests/vectors/*.txt: '#' header lines, then
# "hex: <hex>") and from the reference compression tools. An unknown fuzzer name gets an empty
# corpus. Works from any current directory.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 FUZZER_NAME DIR" >&2
  exit 2
fi
name=$1
dir=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vectors=$repo/tests/vectors
mkdir -p "$dir"

# hex_of FILE: the hex digits of a vector file's "hex:" line.
hex_of() {
  sed -n 's/^hex:[[:space:]]*//p' "$1" | tr -d '[:space:]'
}

# unhex: hex digits on stdin to bytes on stdout.
unhex() {
  if command -v xxd >/dev/null 2>&1; then
    xxd -r -p
  else
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))'
  fi
}

# vector NAME: the bytes of tests/vectors/NAME.txt on stdout.
vector() {
  hex_of "$vectors/$1.txt" | unhex
}

# named_vector FILE OUTPUT: the bytes of the "hex OUTPUT:" line of a session vector file.
named_vector() {
  sed -n "s/^hex $2:[[:space:]]*//p" "$vectors/$1.txt" | tr -d '[:space:]' | unhex
}

# be32 N: N as 4 big-endian bytes on stdout.
be32() {
  printf "\\x$(printf %02x $((($1 >> 24) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))"
  printf "\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $(($1 & 255)))"
}

# A text that compresses well, for the compressed seeds.
sample_text() {
  local i
  for i in 1 2 3 4 5 6 7 8; do
    printf 'kadnet seed corpus line %d: the quick brown fox jumps over the lazy dog\n' "$i"
  done
}

case "$name" in
  message_fuzzer)
    for f in "$vectors"/*.txt; do
      base=$(basename "$f" .txt)
      case "$base" in packet_*) continue ;; esac
      # Session vectors have only named "hex NAME:" lines (whole packets, not messages).
      grep -q '^hex:' "$f" || continue
      hex_of "$f" | unhex >"$dir/$base"
    done
    ;;
  packet_fuzzer | initiator_fuzzer)
    vector packet_hello >"$dir/packet_hello"
    ;;
  session_fuzzer)
    # The fuzzer reads a control byte first (bit 0: under load); the bare vector is kept too.
    vector packet_hello >"$dir/packet_hello"
    { printf '\x00'; vector packet_hello; } >"$dir/packet_hello_idle"
    { printf '\x01'; vector packet_hello; } >"$dir/packet_hello_loaded"
    # A hello with flags bit 1: the fuzzer's responder answers it with an AES-256-GCM session.
    { printf '\x00'; named_vector session_aes_gcm initiator_hello; } >"$dir/aes_gcm_hello_idle"
    ;;
  hello_fuzzer)
    vector packet_hello | tail -c +5 >"$dir/hello_payload"
    named_vector session_aes_gcm initiator_hello | tail -c +5 >"$dir/aes_gcm_hello_payload"
    ;;
  envelope_fuzzer)
    { printf '\xff'; vector ping; } >"$dir/plain_ping"
    message="$(sample_text)"
    size=$(printf '%s' "$message" | wc -c)
    { printf '\x05'; be32 "$size"; printf '%s' "$message" | zstd -q -c; } >"$dir/zstd_text"
    ;;
  decompress_fuzzer)
    sample_text >"$dir/.plain"
    { printf '\x00'; bzip2 -c <"$dir/.plain"; } >"$dir/bz2"
    { printf '\x01'; gzip -c <"$dir/.plain"; } >"$dir/gzip"
    { printf '\x02'; xz -c <"$dir/.plain"; } >"$dir/lzma"
    { printf '\x03'; python3 -c 'import sys, zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))' <"$dir/.plain"; } >"$dir/zlib"
    if python3 -c 'import snappy' 2>/dev/null; then
      { printf '\x04'; python3 -c 'import sys, snappy; sys.stdout.buffer.write(snappy.compress(sys.stdin.buffer.read()))' <"$dir/.plain"; } >"$dir/snappy"
    else
      echo "seed_corpus.sh: python3 snappy module missing, no snappy seed" >&2
    fi
    { printf '\x05'; zstd -q -c <"$dir/.plain"; } >"$dir/zstd"
    rm -f "$dir/.plain"
    ;;
  file_transfer_fuzzer)
    # The frames of PROTOCOL.md 9.7 as each side of a transfer sends them (the codec test's bytes).
    offer=5050002d0000000000000005324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf612e747874
    accept=515100280000000000000003324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf
    echo "${offer}545400080000000000000000535300056865${offer:0:4}" | unhex >"$dir/sender_cut"
    echo "${offer}5454000800000000000000005353000568656c6c6f" | unhex >"$dir/sender"
    echo "${accept}5555000100" | unhex >"$dir/receiver_ok"
    echo "5252000705657869737473" | unhex >"$dir/receiver_reject"
    ;;
  value_patch_fuzzer)
    # A base of 64 bytes (first byte 16), then a patch: two splices, and an empty patch.
    echo "1000020000000200000001000000026869000000300000000000000003616263" | unhex >"$dir/two_splices"
    echo "100000" | unhex >"$dir/empty"
    ;;
  cas_reply_fuzzer)
    # The compare-and-swap accept vector (an acceptor input), a promise with an accepted value
    # (ballot round 2 by 32 x 0x11, proposal 16 x 0x42, value "v"), a conflict (version 3,
    # writer 16 x 0x42, value "now") and an outbid ballot.
    vector store_cas_accept >"$dir/store_cas_accept"
    echo "01000000000000000211111111111111111111111111111111111111111111111111111111111111114242424242424242424242424242424200000001" | unhex >"$dir/promise"
    printf 'v' >>"$dir/promise"
    echo "0000000000000003014242424242424242424242424242424200000003" | unhex >"$dir/conflict"
    printf 'now' >>"$dir/conflict"
    echo "00000000000000021111111111111111111111111111111111111111111111111111111111111111" | unhex >"$dir/ballot"
    ;;
  lock_record_fuzzer)
    # A lock record held by 32 x 0x11 (token 1, lease 1,500 ms), a free one (token 7), and a lock
    # refusal (holder 32 x 0x11, token 1, 250 ms left).
    { printf 'kadnet-lock-1'; echo "0100000000000000011111111111111111111111111111111111111111111111111111111111111111000005dc" | unhex; } >"$dir/held"
    { printf 'kadnet-lock-1'; echo "000000000000000007111111111111111111111111111111111111111111111111111111111111111100000000" | unhex; } >"$dir/free"
    echo "11111111111111111111111111111111111111111111111111111111111111110000000000000001000000fa" | unhex >"$dir/refusal"
    ;;
  listen_notify_fuzzer)
    # A base of 64 bytes (first byte 8), then a diff (one splice at offset 8: remove 1, insert
    # "4"), and the notification vector itself (a diff of version 4: refused, no base).
    { printf '\x08'; echo "000100000008000000010000000134" | unhex; } >"$dir/diff"
    { printf '\x08'; vector store_notify_diff; } >"$dir/notification"
    ;;
  session_cipher_fuzzer)
    # Start 4 packets below epoch 1 (ChaCha20) and 4 below epoch 2 (AES-256-GCM where present);
    # seal 6, deliver them out of order, one twice, one altered; then jump to just below the next
    # epoch and cross it too.
    echo "000003 0010 0011 0012 0013 0014 0015 0100 0103 0104 0102 0102 0201 0105 0389 0016 0017 0106 0107" | tr -d ' ' | unhex >"$dir/cross"
    echo "030003 0010 0011 0012 0013 0014 0015 0103 0101 0100 0102 0105 0104 0204" | tr -d ' ' | unhex >"$dir/cross_aes"
    ;;
  *) ;;  # unknown fuzzer: empty corpus
esac
