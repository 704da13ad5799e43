# engine/haproxy: hsmkeys-haproxy-feeder, the daemon that feeds HAProxy the
# fleet's ticket keys over its runtime API (docs/HAPROXY.md), linked with the
# static libhsmkeys.  `make install` puts it in $(BINDIR) and the example
# haproxy.cfg and systemd unit in $(FEEDER_DOCDIR); its man page
# (docs/man/hsmkeys-haproxy-feeder.8) is installed by the top Makefile.

FEEDER_SRCS := $(wildcard engine/haproxy/*.c)
FEEDER_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(FEEDER_SRCS))
FEEDER_BIN  := $(B)/hsmkeys-haproxy-feeder
FEEDER_DOCDIR ?= $(PREFIX)/share/doc/hsmkeys/haproxy

$(FEEDER_BIN): $(FEEDER_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(FEEDER_OBJS) $(LIB_A) $(ALL_LDFLAGS) $(LIB_LIBS)

ALL_TARGETS   += $(FEEDER_BIN)
TEST_BINS     += $(FEEDER_BIN)
INSTALL_HOOKS += install-haproxy-feeder

.PHONY: install-haproxy-feeder
install-haproxy-feeder: $(FEEDER_BIN)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(FEEDER_BIN) $(DESTDIR)$(BINDIR)/hsmkeys-haproxy-feeder
	install -d $(DESTDIR)$(FEEDER_DOCDIR)
	install -m 0644 engine/haproxy/haproxy.cfg.example engine/haproxy/hsmkeys-haproxy-feeder.service \
	  $(DESTDIR)$(FEEDER_DOCDIR)/
