# engine/sesscache/build.mk - the sealed shared session cache (Redis), as a
# static archive linked into the nginx and Apache modules beside
# libhsmkeys.a (it needs libhiredis; libhsmkeys itself does not).
#   sc_seal.c   session ID / store key / entry formats, AES-256-GCM
#   sc_conf.c   address URL, options, password file
#   sc_store.c  hiredis client: per-thread connection, deadlines, breaker
#   sc_glue.c   OpenSSL external session cache callbacks

SC_SRCS := $(sort $(wildcard engine/sesscache/*.c))
SC_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(SC_SRCS))
SC_A    := $(B)/libhsmkeys_sesscache.a
SC_LIBS := -lhiredis

$(SC_A): $(SC_OBJS)
	rm -f $@ && ar rcs $@ $^

ALL_TARGETS += $(SC_A)

# Unit tests of this component (tests/unit/sc_*_test.c) see its headers and
# link its archive (then libhsmkeys again, for hsmkeys_wipe).
$(B)/obj/tests/unit/sc_%_test.o: ALL_CFLAGS += -Iengine/sesscache
$(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/sc_*_test.c)): $(SC_A)
$(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/sc_*_test.c)): LIB_LIBS += $(LIB_A) $(SC_LIBS)

# Test tool of tests/sesscache/test_sesscache_store.sh (a real Redis).
$(B)/tests/t-sc-store: $(B)/obj/tests/sesscache/t-sc-store.o $(TEST_LIB_OBJS) $(SC_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(SC_LIBS) $(LIB_LIBS)
$(B)/obj/tests/sesscache/t-sc-store.o: ALL_CFLAGS += -Iengine/sesscache -Itests/lib
TEST_BINS += $(B)/tests/t-sc-store
