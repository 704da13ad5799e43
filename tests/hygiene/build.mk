# tests/hygiene: keys in memory are locked, undumpable and wiped; the
# master cannot leave the token; logs carry no key bytes or PINs.
HYGIENE_TEST_BINS := $(B)/tests/keymem_test

$(B)/tests/keymem_test: $(B)/obj/tests/hygiene/keymem_test.o $(B)/obj/tests/hygiene/memscan.o \
                        $(TEST_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

TEST_BINS += $(HYGIENE_TEST_BINS)

# Helper of the server suites: the fleet's keys in another process's memory.
$(B)/tests/t-procscan: $(B)/obj/tests/hygiene/t-procscan.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

TEST_BINS += $(B)/tests/t-procscan
