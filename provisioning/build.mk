# provisioning: hsmkeys-tool, the operator CLI that creates, clones, seals,
# rotates and inspects the master in PKCS#11 tokens (docs/PROVISIONING.md).
# Linked statically with the library: it uses the internal PKCS#11 layer.
HKT_SRCS := $(wildcard provisioning/src/*.c)
HKT_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(HKT_SRCS))
HKT_BIN  := $(B)/hsmkeys-tool
HKT_SCRIPTS := $(wildcard provisioning/*.sh)

$(B)/obj/provisioning/%.o: ALL_CFLAGS += -Ihsmkeys/src
$(B)/obj/tests/provisioning/%.o: ALL_CFLAGS += -Ihsmkeys/src

$(HKT_BIN): $(HKT_OBJS) $(LIB_A)
	$(CC) -o $@ $(HKT_OBJS) $(LIB_A) $(ALL_LDFLAGS) $(LIB_LIBS)

# Test helper: issues a ticket with one token and resumes it with another
# (or two contexts on one shared token), in memory.
HKT_TICKET_BIN := $(B)/tests/hk-ticket
$(B)/obj/tests/provisioning/hk-ticket.o: ALL_CFLAGS += -Ihsmkeys/src -Itests/lib
$(HKT_TICKET_BIN): $(B)/obj/tests/provisioning/hk-ticket.o $(TEST_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

# Test helper: tries to read CKA_VALUE of the masters; plants unsafe ones.
HKT_VALUE_BIN := $(B)/tests/hk-value
$(HKT_VALUE_BIN): $(B)/obj/tests/provisioning/hk-value.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

ALL_TARGETS += $(HKT_BIN)
TEST_BINS += $(HKT_BIN) $(HKT_TICKET_BIN) $(HKT_VALUE_BIN)
INSTALL_HOOKS += install-provisioning

.PHONY: install-provisioning
install-provisioning: $(HKT_BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PREFIX)/share/hsmkeys/provisioning
	install -m 0755 $(HKT_BIN) $(DESTDIR)$(BINDIR)/hsmkeys-tool
	for s in $(filter-out %-lib.sh,$(HKT_SCRIPTS)); do install -m 0755 $$s $(DESTDIR)$(PREFIX)/share/hsmkeys/provisioning/; done
	install -m 0644 provisioning/ceremony-lib.sh $(DESTDIR)$(PREFIX)/share/hsmkeys/provisioning/
	install -d $(DESTDIR)$(PREFIX)/share/hsmkeys/prometheus
	install -m 0644 engine/prometheus/hsmkeys.rules.yml $(DESTDIR)$(PREFIX)/share/hsmkeys/prometheus/
