#!/bin/bash
# make install into a DESTDIR: the library, headers, pkg-config file and man
# pages land where PREFIX says, and a program built only from the installed
# files (pkg-config) links and runs against a real token.
source "${HSMKEYS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/lab.sh" || exit 1
lab_init
cd "$HSMKEYS_ROOT" || exit 1
[ -d "$LAB" ] || exit 1
D=$LAB/destdir
make -s install DESTDIR="$D" PREFIX=/usr B="${HSMKEYS_BUILD#$HSMKEYS_ROOT/}" >"$LAB/install.log" 2>&1
tap_ok $? "make install DESTDIR=... PREFIX=/usr succeeds"
for f in usr/lib/libhsmkeys.a usr/lib/libhsmkeys.so usr/lib/libhsmkeys.so.0 \
         usr/include/hsmkeys/hsmkeys.h usr/include/hsmkeys/hsmkeys_ssl.h \
         usr/lib/pkgconfig/hsmkeys.pc usr/share/man/man3/hsmkeys.3; do
    [ -e "$D/$f" ]; tap_ok $? "installed $f"
done
grep -q '^prefix=/usr$' "$D/usr/lib/pkgconfig/hsmkeys.pc"; tap_ok $? "pkg-config file names the PREFIX"
nm -D --defined-only "$D/usr/lib/libhsmkeys.so" | awk '{print $3}' | grep -v '^hsmkeys_' | grep -v '^$' | grep -v '^HSMKEYS_0$' > "$LAB/leaked-symbols"
[ ! -s "$LAB/leaked-symbols" ]; tap_ok $? "the shared library exports only hsmkeys_* symbols"

cat > "$LAB/app.c" <<'C'
#include <stdio.h>
#include <hsmkeys/hsmkeys_ssl.h>
int main(int argc, char **argv)
{
    hsmkeys_config *c; hsmkeys_ctx *hk; SSL_CTX *s;
    (void)argc;
    hsmkeys_config_new(&c);
    hsmkeys_config_set(c, "uri", argv[1]);
    hsmkeys_config_set(c, "domain", "install.test");
    if (hsmkeys_open(c, &hk) != HSMKEYS_OK) { fprintf(stderr, "%s\n", hsmkeys_last_error()); return 1; }
    hsmkeys_config_free(c);
    s = SSL_CTX_new(TLS_server_method());
    if (hsmkeys_ssl_attach(s, hk) != HSMKEYS_OK) return 2;
    hsmkeys_close(hk);
    SSL_CTX_free(s);
    printf("version %s\n", hsmkeys_version());
    return 0;
}
C
export PKG_CONFIG_PATH=$D/usr/lib/pkgconfig
PC="pkg-config --define-variable=prefix=$D/usr"
cc -o "$LAB/app" "$LAB/app.c" $($PC --cflags hsmkeys) $($PC --libs hsmkeys) -lssl -lcrypto \
   -Wl,-rpath,"$D/usr/lib" 2>"$LAB/cc.log"
tap_ok $? "a program builds from the installed header and pkg-config file"
lab_host S1
out=$(SOFTHSM2_CONF=$S1_CONF "$LAB/app" "$S1_URI" 2>"$LAB/app.log")
tap_ok $? "it opens a token and attaches to an SSL_CTX"
[ "$out" = "version $(sed -n 's/^#define HSMKEYS_VERSION_STRING "\(.*\)"/\1/p' hsmkeys/include/hsmkeys/hsmkeys.h)" ]
tap_ok $? "runtime version matches the header"
tap_done
