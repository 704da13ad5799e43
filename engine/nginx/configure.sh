#!/bin/bash
# configure.sh - prepare an nginx build tree for the hsmkeys modules.
#
# Copies Debian's configured nginx source (package nginx-dev) to TREE and runs
# ./configure with Debian's own flags (conf_flags) plus the stream TLS module
# and this addon, so that the modules load into Debian's nginx binary
# (--with-compat signature).  Only our two modules are built from the tree.
#
#   configure.sh TREE LIB_A "CC_OPT" "LD_OPT"
set -euo pipefail
tree=$1 lib_a=$2 cc_opt=$3 ld_opt=$4
src=/usr/share/nginx/src
addon=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$src/conf_flags" ]; then
    echo "engine/nginx: $src/conf_flags not found: install nginx-dev (make deps)" >&2
    exit 1
fi
mkdir -p "$(dirname "$tree")"
tree=$(cd "$(dirname "$tree")" && pwd)/$(basename "$tree")
log=$(dirname "$tree")/configure.log
# Several engineers (and make -j) may run this at once in one working tree:
# configure a private copy, then move it into place.
tmp=$(mktemp -d "$tree.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -a "$src/." "$tmp/"
cd "$tmp"
# shellcheck disable=SC1091
. ./conf_flags
if ! HSMKEYS_LIB_A=$lib_a ./configure "${NGX_CONF_FLAGS[@]}" \
        --with-stream=dynamic --with-stream_ssl_module \
        --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
        --add-dynamic-module="$addon" >"$log.$$" 2>&1; then
    mv -f "$log.$$" "$log"
    tail -20 "$log" >&2
    echo "engine/nginx: nginx ./configure failed (full log: $log)" >&2
    exit 1
fi
mv -f "$log.$$" "$log"
cd /
rm -rf "$tree"
mv "$tmp" "$tree"
trap - EXIT
