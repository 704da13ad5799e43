# tools/probe: hsmkeys-probe, the resumption probe (OpenSSL only; works
# against any TLS server).
PROBE_SRCS := $(wildcard tools/probe/*.c)
PROBE_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(PROBE_SRCS))
PROBE_BIN  := $(B)/hsmkeys-probe

$(PROBE_BIN): $(PROBE_OBJS)
	$(CC) -o $@ $(PROBE_OBJS) $(ALL_LDFLAGS) $(SSL_LIBS) -lpthread

ALL_TARGETS += $(PROBE_BIN)
TEST_BINS += $(PROBE_BIN)
INSTALL_HOOKS += install-probe

.PHONY: install-probe
install-probe: $(PROBE_BIN)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(PROBE_BIN) $(DESTDIR)$(BINDIR)/hsmkeys-probe
