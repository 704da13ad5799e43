# tools/demo-server: hsmkeys-demo-server, the small HTTPS server of the demo
# and the lab tests (libhsmkeys + hsmkeys_ssl_attach, or --baseline).
DEMO_SERVER_SRCS := $(wildcard tools/demo-server/*.c)
DEMO_SERVER_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(DEMO_SERVER_SRCS))
DEMO_SERVER_BIN  := $(B)/hsmkeys-demo-server

# --metrics: the loopback /metrics endpoint (engine/metrics, as the feeder).
$(B)/obj/tools/demo-server/%.o: ALL_CFLAGS += -Iengine/metrics

$(DEMO_SERVER_BIN): $(DEMO_SERVER_OBJS) $(B)/obj/engine/metrics/hkm_http.o $(LIB_A)
	$(CC) -o $@ $(DEMO_SERVER_OBJS) $(B)/obj/engine/metrics/hkm_http.o $(LIB_A) $(ALL_LDFLAGS) $(LIB_LIBS)

# Built once the OpenSSL glue (engine/src) exists; until then it cannot link.
ifneq ($(wildcard engine/src/*.c),)
ALL_TARGETS += $(DEMO_SERVER_BIN)
TEST_BINS += $(DEMO_SERVER_BIN)
endif
