# engine/nginx: the nginx dynamic modules ngx_http_hsmkeys_module.so and
# ngx_stream_hsmkeys_module.so, built against Debian's nginx-dev and linked
# with the static libhsmkeys.  The nginx tree is configured once (slow) and
# only recompiled/relinked when the module sources or libhsmkeys change.
# Not built for sanitizer builds (Debian's nginx is not instrumented).

NGINX_MODULES_DIR   ?= /usr/lib/nginx/modules
NGINX_MODULES_AVAIL ?= /usr/share/nginx/modules-available

NGX_B     := $(B)/nginx
NGX_TREE  := $(NGX_B)/src
NGX_NAMES := ngx_http_hsmkeys_module.so ngx_stream_hsmkeys_module.so
NGX_MODS  := $(addprefix $(NGX_B)/,$(NGX_NAMES))
NGX_SRCS  := $(wildcard engine/nginx/*.c engine/nginx/*.h) \
             hsmkeys/include/hsmkeys/hsmkeys.h engine/include/hsmkeys/hsmkeys_ssl.h
NGX_CC_OPT := -g -O2 -fstack-protector-strong -Wformat -Werror=format-security \
              -fPIC -D_FORTIFY_SOURCE=2
NGX_LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC

# flock: other engineers' and make -j's runs of these rules wait for ours.
$(NGX_TREE)/objs/Makefile: engine/nginx/config engine/nginx/configure.sh engine/nginx/build.mk
	@mkdir -p $(NGX_B)
	flock $(NGX_B)/.lock bash engine/nginx/configure.sh $(NGX_TREE) $(CURDIR)/$(LIB_A) "$(NGX_CC_OPT)" "$(NGX_LD_OPT)"

# nginx's own Makefile must not see our command-line variables (CFLAGS=...).
$(NGX_MODS) &: $(NGX_TREE)/objs/Makefile $(NGX_SRCS) $(LIB_A) $(B)/libhsmkeys_sesscache.a $(wildcard engine/sesscache/*.h)
	flock $(NGX_B)/.lock bash engine/nginx/make.sh $(NGX_TREE) $(NGX_NAMES)

.PHONY: nginx-modules install-nginx
nginx-modules: $(NGX_MODS)

# Without nginx-dev (make deps installs it) the modules are left out of
# "make" and their tests skip, rather than breaking everyone's build.
NGX_HAVE_DEV := $(wildcard /usr/share/nginx/src/conf_flags)
ifeq ($(SAN)$(if $(NGX_HAVE_DEV),,none),)
ALL_TARGETS   += $(NGX_MODS)
TEST_BINS     += $(NGX_MODS)
INSTALL_HOOKS += install-nginx
endif

install-nginx: $(NGX_MODS)
	install -d $(DESTDIR)$(NGINX_MODULES_DIR) $(DESTDIR)$(NGINX_MODULES_AVAIL)
	install -m 0644 $(NGX_MODS) $(DESTDIR)$(NGINX_MODULES_DIR)/
	install -m 0644 engine/nginx/mod-http-hsmkeys.conf engine/nginx/mod-stream-hsmkeys.conf \
	  $(DESTDIR)$(NGINX_MODULES_AVAIL)/

# Test helper of tests/nginx: stores a TLS private key in a throwaway token.
$(B)/tests/t-import-key: tests/nginx/t-import-key.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-deprecated-declarations -o $@ $< $(ALL_LDFLAGS) $(LIB_A) -lp11 $(LIB_LIBS)

TEST_BINS += $(B)/tests/t-import-key
