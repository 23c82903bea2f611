#!/bin/sh
# seed-corpus.sh DIR - fill DIR with seed inputs for the GGUF fuzzer.
#
# Seeds: the first 64 KiB of the small real models and of the llama.cpp
# vocab files in ../shared/models (or $SAM_MODELS), skipping silently what
# is missing, plus a few tiny complete files built here byte by byte (every
# value type, several tensor types, v2 and v3), whose tensor data fits in
# the fuzzer's 64 KiB input limit. Idempotent: rerunning rewrites the same
# files and leaves the rest of DIR (the fuzzer's findings) alone.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
models=${SAM_MODELS:-$here/../../../shared/models}
mkdir -p "$dir"

# first 64 KiB of SRC into DIR/NAME, if SRC exists
seed_head() {
	[ -r "$1" ] || return 0
	dd if="$1" of="$dir/$2.tmp" bs=4096 count=16 2>/dev/null
	mv -f "$dir/$2.tmp" "$dir/$2"
}

for f in stories260K.gguf stories260K-q8_0.gguf stories260K-q4_0.gguf; do
	seed_head "$models/$f" "seed-$f"
done
for f in "$models"/vocab/ggml-vocab-*.gguf; do
	[ -e "$f" ] || continue
	seed_head "$f" "seed-$(basename "$f")"
done

# ---- tiny synthetic files ------------------------------------------------

# sh has no local variables: helpers use _-prefixed names of their own.

# le N V: the N-byte little-endian encoding of V (N <= 8, V a shell integer)
le() {
	_le_n=$1 _le_v=$2 _le_out=
	while [ "$_le_n" -gt 0 ]; do
		_le_out="$_le_out\\$(printf '%03o' $((_le_v & 255)))"
		_le_v=$((_le_v >> 8))
		_le_n=$((_le_n - 1))
	done
	# shellcheck disable=SC2059 # the format is the octal escapes
	printf "$_le_out"
}
u32() { le 4 "$1"; }
u64() { le 8 "$1"; }
str() { u64 ${#1}; printf '%s' "$1"; }
kv() { str "$1"; u32 "$2"; } # key, value type
zeros() { if [ "$1" -gt 0 ]; then dd if=/dev/zero bs=1 count="$1" 2>/dev/null; fi; }
# pad FILE to a multiple of 32 bytes
pad32() {
	_pad_n=$(wc -c <"$1")
	zeros $(((32 - _pad_n % 32) % 32)) >>"$1"
}
# bytes 0, 1, 2, ... N-1 (mod 256)
ramp() {
	_ramp_i=0
	while [ "$_ramp_i" -lt "$1" ]; do
		# shellcheck disable=SC2059
		printf "\\$(printf '%03o' $((_ramp_i % 256)))"
		_ramp_i=$((_ramp_i + 1))
	done
}

# every value type, tensors F32 [4], Q8_0 [32, 2], F16 [8, 2]
synth() { # version
	printf 'GGUF'
	u32 "$1"
	u64 3  # tensors
	u64 15 # kv
	kv general.architecture 8; str llama
	kv general.alignment 4; u32 32
	kv t.u8 0; le 1 200
	kv t.i8 1; le 1 -100
	kv t.u16 2; le 2 60000
	kv t.i16 3; le 2 -30000
	kv t.u32 4; u32 4000000000
	kv t.i32 5; u32 -2000000000
	kv t.f32 6; u32 1065353216 # 1.0
	kv t.bool 7; le 1 1
	kv t.u64 10; u64 -1
	kv t.i64 11; u64 -5
	kv t.f64 12; u64 4611686018427387904 # 2.0
	kv t.arr_i32 9; u32 5; u64 3; u32 1; u32 -2; u32 3
	kv t.arr_str 9; u32 8; u64 3; str a; str ""; str "<0x0A>"
	str a.weight; u32 1; u64 4; u32 0; u64 0
	str b.weight; u32 2; u64 32; u64 2; u32 8; u64 32
	str c.weight; u32 2; u64 8; u64 2; u32 1; u64 128
}

tmp=$dir/.seed.tmp
for version in 2 3; do
	synth "$version" >"$tmp"
	pad32 "$tmp"
	ramp 16 >>"$tmp"  # a: 16 bytes at 0
	pad32 "$tmp"
	ramp 68 >>"$tmp"  # b: 68 bytes at 32
	pad32 "$tmp"
	ramp 32 >>"$tmp"  # c: 32 bytes at 128
	mv -f "$tmp" "$dir/seed-synth-v$version.gguf"
done

# no kv, no tensors: just the header, padded
{ printf 'GGUF'; u32 3; u64 0; u64 0; zeros 8; } >"$tmp"
mv -f "$tmp" "$dir/seed-empty.gguf"
