# hsmkeys - top-level build.  See README.md.
#
#   make                 library (shared + static), pkg-config file, tools
#   make check           install missing Debian packages, build, run all tests
#   make demo            the seed scenario live on SoftHSM2 (LB, S1, S2, C1, C2)
#   make bench           benchmarks (not part of check)
#   make install         honours PREFIX and DESTDIR
#   make deb             Debian packages (debian/) into build/deb/
#   make check-deb       build, install, exercise and purge the packages (root)
#   make SAN=asan check-unit   unit tests under ASan+UBSan (SAN=tsan: TSan)
#
# Each directory adds its own rules in a build.mk fragment included below.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR    ?=

CC      ?= cc
SAN     ?=
B       := build$(if $(SAN),-$(SAN))

SONAME_MAJOR := 0
VERSION := $(shell sed -n 's/^\#define HSMKEYS_VERSION_STRING "\(.*\)"/\1/p' hsmkeys/include/hsmkeys/hsmkeys.h)

P11KIT_CFLAGS := $(shell pkg-config --cflags p11-kit-1 2>/dev/null || echo -I/usr/include/p11-kit-1)
P11KIT_LIBS   := $(shell pkg-config --libs p11-kit-1 2>/dev/null || echo -lp11-kit)
SSL_LIBS      := -lssl -lcrypto

SAN_FLAGS_asan := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_FLAGS_tsan := -fsanitize=thread -fno-omit-frame-pointer
SAN_FLAGS := $(SAN_FLAGS_$(SAN))

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla
CFLAGS  ?= -O2 -g
# CPPFLAGS: dpkg-buildflags' -D_FORTIFY_SOURCE=2 when built by debian/rules.
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) \
             -Ihsmkeys/include -Iengine/include $(P11KIT_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) $(SAN_FLAGS)

LIB_SRCS := $(wildcard hsmkeys/src/*.c) $(wildcard engine/src/*.c)
LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRCS))
LIB_SO   := $(B)/libhsmkeys.so.$(VERSION)
LIB_A    := $(B)/libhsmkeys.a
LIB_LIBS := $(P11KIT_LIBS) $(SSL_LIBS) -ldl -lpthread

# The shared test library (tests/lib), defined here so that every fragment,
# whatever its include order, can link test helpers with it.
TEST_LIB_SRCS := tests/lib/test.c tests/lib/softhsm.c tests/lib/tls.c tests/lib/refkdf.c tests/lib/modcheck.c
TEST_LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(TEST_LIB_SRCS))

# Targets that fragments append to.
ALL_TARGETS  := $(LIB_SO) $(LIB_A) $(B)/hsmkeys.pc
TEST_BINS    :=
INSTALL_HOOKS :=

.PHONY: all check check-unit deps demo bench install uninstall clean sanitize deb check-deb
all: build-all

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB_SO): $(LIB_OBJS) hsmkeys/libhsmkeys.map
	$(CC) -shared -Wl,-soname,libhsmkeys.so.$(SONAME_MAJOR) \
	  -Wl,--version-script=hsmkeys/libhsmkeys.map -o $@ $(LIB_OBJS) $(ALL_LDFLAGS) $(LIB_LIBS)
	ln -sf libhsmkeys.so.$(VERSION) $(B)/libhsmkeys.so.$(SONAME_MAJOR)
	ln -sf libhsmkeys.so.$(SONAME_MAJOR) $(B)/libhsmkeys.so

$(LIB_A): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# libdir/includedir stay relative to ${prefix} when under PREFIX, so the
# file can be relocated (pkg-config --define-variable=prefix=...).
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	    -e 's|@VERSION@|$(VERSION)|'
$(B)/hsmkeys.pc: hsmkeys/hsmkeys.pc.in Makefile
	@mkdir -p $(B)
	$(PC_SED) $< > $@

-include $(sort $(wildcard */build.mk */*/build.mk))

build-all: $(ALL_TARGETS)

# Debian packages the build, tests and demo need (idempotent; only when missing).
deps:
	@bash ci/deps.sh

check: deps
	$(MAKE) build-all tests
	bash tests/run.sh $(B)

tests: $(TEST_BINS)

# Unit tests only (used for the sanitizer runs).
check-unit: $(LIB_A) $(TEST_BINS)
	HSMKEYS_UNIT_ONLY=1 bash tests/run.sh $(B)

install: build-all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/hsmkeys $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libhsmkeys.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libhsmkeys.so.$(SONAME_MAJOR)
	ln -sf libhsmkeys.so.$(SONAME_MAJOR) $(DESTDIR)$(LIBDIR)/libhsmkeys.so
	install -m 0644 hsmkeys/include/hsmkeys/hsmkeys.h engine/include/hsmkeys/hsmkeys_ssl.h \
	  $(DESTDIR)$(INCLUDEDIR)/hsmkeys/
	$(PC_SED) hsmkeys/hsmkeys.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/hsmkeys.pc
	@for m in docs/man/*.3 docs/man/*.1 docs/man/*.8; do \
	  [ -f "$$m" ] || continue; s=$${m##*.}; \
	  install -d $(DESTDIR)$(MANDIR)/man$$s && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	@for h in $(INSTALL_HOOKS); do $(MAKE) --no-print-directory $$h || exit 1; done

# Debian packages (debian/, built by debian/rules with this Makefile) into
# build/deb/: built in a copy of the tree there, so the tree stays clean.
# Then lintian; any error fails.  make check-deb installs, exercises and
# purges them (tests/deb/deb_packages.sh, as root; not part of make check).
DEB_OUT := build/deb
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || \
	  { echo "make deb: dpkg-buildpackage/debhelper missing: make deps (or apt-get install debhelper lintian)" >&2; exit 1; }
	@v=$$(dpkg-parsechangelog -l debian/changelog -S Version); [ "$$v" = "$(VERSION)" ] || \
	  { echo "make deb: debian/changelog is at $$v but hsmkeys.h at $(VERSION): add a changelog entry (dch -v $(VERSION))" >&2; exit 1; }
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_OUT)/src
	tar -cf - --exclude=./build --exclude='./build-*' --exclude=./.git . | tar -xf - -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 || \
	  { tail -40 ../build.log; echo "make deb: failed (log: $(DEB_OUT)/build.log)" >&2; exit 1; }
	rm -rf $(DEB_OUT)/src
	lintian --info --display-info $(DEB_OUT)/*.changes > $(DEB_OUT)/lintian.txt 2>&1; \
	  cat $(DEB_OUT)/lintian.txt; \
	  ! grep -q '^E: ' $(DEB_OUT)/lintian.txt || { echo "make deb: lintian reports errors" >&2; exit 1; }
	@ls -l $(DEB_OUT)/*.deb

check-deb: deps
	$(MAKE) deb
	HSMKEYS_ROOT=$(CURDIR) HSMKEYS_BUILD=$(CURDIR)/build bash tests/deb/deb_packages.sh

clean:
	rm -rf build build-asan build-tsan

-include $(shell find $(B) -name '*.d' 2>/dev/null)
