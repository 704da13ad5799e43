# engine/apache/build.mk - mod_hsmkeys for Debian's Apache httpd 2.4.
#
# Built with apxs (apache2-dev) in $(B)/apache/src, where the sources are
# linked so that libtool's objects stay out of the tree.  The static
# libhsmkeys (-fPIC) is linked in with its symbols hidden
# (--exclude-libs), so the module needs no installed library and cannot
# clash with another copy of it in the server.
#   make install   module -> $(APACHE_MODDIR), hsmkeys.load/.conf ->
#                  $(APACHE_CONFDIR)/mods-available (DESTDIR honoured);
#                  enable with: a2enmod hsmkeys
# Not built for sanitizer builds (a sanitized module cannot load into the
# distribution's httpd) or when apxs is missing.

APXS ?= $(shell command -v apxs 2>/dev/null || command -v apxs2 2>/dev/null)
APACHE_SRCS := $(sort $(wildcard engine/apache/*.c))
APACHE_HDRS := $(sort $(wildcard engine/apache/*.h))
APACHE_MOD  := $(B)/apache/mod_hsmkeys.so
APACHE_MODDIR  ?= $(if $(APXS),$(shell $(APXS) -q LIBEXECDIR),/usr/lib/apache2/modules)
APACHE_CONFDIR ?= /etc/apache2
APACHE_COMMA := ,
APACHE_WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
               -Wmissing-prototypes -Wvla

ifneq ($(APXS),)
ifeq ($(SAN),)
ALL_TARGETS   += $(APACHE_MOD)
INSTALL_HOOKS += install-apache
endif
endif

.PHONY: apache install-apache
apache: $(APACHE_MOD)

$(APACHE_MOD): $(APACHE_SRCS) $(APACHE_HDRS) $(LIB_A) $(B)/libhsmkeys_sesscache.a engine/apache/build.mk \
               hsmkeys/include/hsmkeys/hsmkeys.h engine/include/hsmkeys/hsmkeys_ssl.h
	@rm -rf $(B)/apache/src && mkdir -p $(B)/apache/src
	@for f in $(APACHE_SRCS) $(APACHE_HDRS); do ln -s $(CURDIR)/$$f $(B)/apache/src/; done
	cd $(B)/apache/src && $(APXS) -c -o mod_hsmkeys.la \
	  $(addprefix -Wc$(APACHE_COMMA),$(APACHE_WARN)) -Wc,-std=gnu11 \
	  -I$(CURDIR)/hsmkeys/include -I$(CURDIR)/engine/include -I$(CURDIR)/engine/sesscache \
	  $(notdir $(APACHE_SRCS)) $(CURDIR)/$(B)/libhsmkeys_sesscache.a $(CURDIR)/$(LIB_A) \
	  -Wl,--exclude-libs$(APACHE_COMMA)ALL \
	  -lhiredis $(LIB_LIBS) >build.log 2>&1 \
	  || { cat build.log; exit 1; }
	cp $(B)/apache/src/.libs/mod_hsmkeys.so $@.tmp && mv -f $@.tmp $@ # new inode: running httpds keep theirs

install-apache: $(APACHE_MOD)
	install -d $(DESTDIR)$(APACHE_MODDIR) $(DESTDIR)$(APACHE_CONFDIR)/mods-available
	install -m 0644 $(APACHE_MOD) $(DESTDIR)$(APACHE_MODDIR)/mod_hsmkeys.so
	sed 's|@APACHE_MODDIR@|$(APACHE_MODDIR)|' engine/apache/hsmkeys.load \
	  > $(DESTDIR)$(APACHE_CONFDIR)/mods-available/hsmkeys.load
	chmod 0644 $(DESTDIR)$(APACHE_CONFDIR)/mods-available/hsmkeys.load
	install -m 0644 engine/apache/hsmkeys.conf $(DESTDIR)$(APACHE_CONFDIR)/mods-available/hsmkeys.conf
