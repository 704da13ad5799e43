# engine/haproxy: hsmkeys-haproxy-feeder, the daemon that feeds HAProxy the
# fleet's ticket keys over its runtime API (docs/HAPROXY.md), linked with the
# static libhsmkeys.  `make install` puts it in $(BINDIR) and the example
# haproxy.cfg, systemd unit and defaults file in $(FEEDER_DOCDIR); its man
# page (docs/man/hsmkeys-haproxy-feeder.8) is installed by the top Makefile.
# With SYSTEMD_UNITDIR set (debian/rules: /lib/systemd/system) the unit is
# installed there too, and with FEEDER_DEFAULTDIR (/etc/default) the
# defaults file it reads.  The unit names /usr/bin: rewritten to $(BINDIR).

FEEDER_SRCS := $(wildcard engine/haproxy/*.c)
FEEDER_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(FEEDER_SRCS))
FEEDER_BIN  := $(B)/hsmkeys-haproxy-feeder
FEEDER_DOCDIR ?= $(PREFIX)/share/doc/hsmkeys/haproxy
SYSTEMD_UNITDIR ?=
FEEDER_DEFAULTDIR ?=
FEEDER_UNIT_SED = sed 's|/usr/bin/hsmkeys-haproxy-feeder|$(BINDIR)/hsmkeys-haproxy-feeder|'

# --metrics: the loopback /metrics endpoint shared with the demo server.
$(B)/obj/engine/haproxy/%.o: ALL_CFLAGS += -Iengine/metrics

$(FEEDER_BIN): $(FEEDER_OBJS) $(B)/obj/engine/metrics/hkm_http.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(FEEDER_OBJS) $(B)/obj/engine/metrics/hkm_http.o $(LIB_A) $(ALL_LDFLAGS) $(LIB_LIBS)

ALL_TARGETS   += $(FEEDER_BIN)
TEST_BINS     += $(FEEDER_BIN)
INSTALL_HOOKS += install-haproxy-feeder

.PHONY: install-haproxy-feeder
install-haproxy-feeder: $(FEEDER_BIN)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(FEEDER_BIN) $(DESTDIR)$(BINDIR)/hsmkeys-haproxy-feeder
	install -d $(DESTDIR)$(FEEDER_DOCDIR)
	install -m 0644 engine/haproxy/haproxy.cfg.example engine/haproxy/hsmkeys-haproxy-feeder.default \
	  $(DESTDIR)$(FEEDER_DOCDIR)/
	$(FEEDER_UNIT_SED) engine/haproxy/hsmkeys-haproxy-feeder.service \
	  > $(DESTDIR)$(FEEDER_DOCDIR)/hsmkeys-haproxy-feeder.service
	chmod 0644 $(DESTDIR)$(FEEDER_DOCDIR)/hsmkeys-haproxy-feeder.service
	if [ -n "$(SYSTEMD_UNITDIR)" ]; then \
	  install -d $(DESTDIR)$(SYSTEMD_UNITDIR) && \
	  install -m 0644 $(DESTDIR)$(FEEDER_DOCDIR)/hsmkeys-haproxy-feeder.service $(DESTDIR)$(SYSTEMD_UNITDIR)/; fi
	if [ -n "$(FEEDER_DEFAULTDIR)" ]; then \
	  install -d $(DESTDIR)$(FEEDER_DEFAULTDIR) && \
	  install -m 0644 engine/haproxy/hsmkeys-haproxy-feeder.default \
	    $(DESTDIR)$(FEEDER_DEFAULTDIR)/hsmkeys-haproxy-feeder; fi
