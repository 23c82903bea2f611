#!/bin/sh
# embed.sh NAME FILE - print a C source that holds FILE's bytes as
#   const char NAME[];        (the bytes, then a NUL, so it is also a C string)
#   const size_t NAME_len;    (the byte count, without the NUL)
# C11 has no #embed; od(1) is POSIX, so no xxd or python is needed.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 NAME FILE" >&2; exit 2; }
name=$1 file=$2
len=$(wc -c < "$file" | tr -d ' ')
printf '/* Generated from %s by scripts/embed.sh: do not edit. */\n' "$file"
printf '#include <stddef.h>\n\n'
printf 'extern const char %s[];\nextern const size_t %s_len;\n\n' "$name" "$name"
printf 'const char %s[] = {\n' "$name"
od -A n -v -t x1 "$file" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/\t/'
printf '\t0x00\n};\nconst size_t %s_len = %s;\n' "$name" "$len"
