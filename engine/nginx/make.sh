#!/bin/bash
# make.sh - compile and link the hsmkeys nginx modules in a configured tree
# (see configure.sh), then publish them next to the tree.  Relinks every
# time so a new libhsmkeys.a is picked up; nginx's own Makefile recompiles
# only changed sources.  nginx's Makefile must not see our make's
# command-line variables (CFLAGS=...), hence the clean environment.
#
#   make.sh TREE MODULE.so...
set -euo pipefail
tree=$1; shift
cd "$tree"
targets=()
for m in "$@"; do rm -f "objs/$m"; targets+=("objs/$m"); done
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -f objs/Makefile "${targets[@]}" >../make.log 2>&1; then
    tail -30 ../make.log >&2
    echo "engine/nginx: module build failed (full log: $(dirname "$tree")/make.log)" >&2
    exit 1
fi
for m in "$@"; do
    cp "objs/$m" "../$m.tmp.$$" && mv -f "../$m.tmp.$$" "../$m"
done
