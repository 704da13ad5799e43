# bench/build.mk - `make bench`: builds hsmkeys-bench and runs bench/run.sh,
# which prints one table and writes build/bench/ (results, chart data).
# Not part of `make check`; installs its extra Debian packages (gnuplot) by
# itself through ci/deps.sh.
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(BENCH_SRCS))
BENCH_BIN  := $(B)/bench/hsmkeys-bench
BENCH_PKGS := gnuplot-nox
# Fleet figures (item 5, 6) reuse the probe, the demo server and t-token.
BENCH_TOOLS := $(B)/hsmkeys-probe $(B)/hsmkeys-demo-server $(B)/tests/t-token

$(B)/obj/bench/%.o: ALL_CFLAGS += -Ihsmkeys/src -Itests/lib -Iengine/sesscache
# libp11's engine is the OpenSSL 1.x ENGINE API (deprecated in 3.0).
$(B)/obj/bench/engine_key.o: ALL_CFLAGS += -Wno-deprecated-declarations

# item 8 links the sealed session cache (and hiredis)
$(BENCH_BIN): $(BENCH_OBJS) $(TEST_LIB_OBJS) $(B)/libhsmkeys_sesscache.a $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) -lhiredis $(LIB_LIBS)

.PHONY: bench bench-deps
bench-deps:
	@HSMKEYS_DEPS_EXTRA="$(BENCH_PKGS)" bash ci/deps.sh

bench: bench-deps
	$(MAKE) --no-print-directory $(BENCH_BIN) $(BENCH_TOOLS)
	bash bench/run.sh $(B)
