# tests/fault: behaviour under token faults, through the fault module
# (tests/faultmod) around the real SoftHSM2.  One binary per concern.
FAULT_TESTS := outage openfail stall expiry chain_fault
FAULT_HELPER_OBJS := $(B)/obj/tests/fault/fault_env.o $(B)/obj/tests/faultmod/faultctl.o
FAULT_TEST_BINS := $(patsubst %,$(B)/tests/%_test,$(FAULT_TESTS))

$(FAULT_TEST_BINS): $(B)/tests/%_test: $(B)/obj/tests/fault/%_test.o $(FAULT_HELPER_OBJS) \
                    $(TEST_LIB_OBJS) $(LIB_A) $(B)/tests/libhsmkeys-faultmod.so
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(filter %.o %.a,$^) $(ALL_LDFLAGS) $(LIB_LIBS)

# expiry_test scans its own memory with the hygiene scanner.
$(B)/tests/expiry_test: $(B)/obj/tests/hygiene/memscan.o
$(B)/obj/tests/fault/expiry_test.o: ALL_CFLAGS += -Itests/hygiene

TEST_BINS += $(FAULT_TEST_BINS)
