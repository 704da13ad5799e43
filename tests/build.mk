# tests/build.mk - unit tests (tests/unit/<unit>_test.c -> $(B)/tests/<unit>_test)
# and the test helper tools.  The shared test library (TEST_LIB_OBJS) is
# defined in the top Makefile.

TEST_CFLAGS_EXTRA := -Ihsmkeys/src -Itests/lib

$(B)/obj/tests/%.o: ALL_CFLAGS += $(TEST_CFLAGS_EXTRA)

UNIT_TEST_SRCS := $(wildcard tests/unit/*_test.c)
UNIT_TEST_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_TEST_SRCS))

$(B)/tests/%_test: $(B)/obj/tests/unit/%_test.o $(TEST_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

$(B)/tests/t-token: $(B)/obj/tests/tools/t-token.o $(TEST_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

$(B)/tests/t-chain: $(B)/obj/tests/tools/t-chain.o $(TEST_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

TEST_BINS += $(UNIT_TEST_BINS) $(B)/tests/t-token $(B)/tests/t-chain
