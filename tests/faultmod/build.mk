# tests/faultmod: the fault-injecting PKCS#11 module (see faultmod.h).
FAULTMOD_SO := $(B)/tests/libhsmkeys-faultmod.so
FAULTMOD_SRCS := tests/faultmod/module.c tests/faultmod/rules.c
FAULTCTL_OBJ := $(B)/obj/tests/faultmod/faultctl.o

$(FAULTMOD_SO): $(FAULTMOD_SRCS) tests/faultmod/fm.h tests/faultmod/faultmod.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fvisibility=hidden -shared -o $@ $(FAULTMOD_SRCS) \
	  $(ALL_LDFLAGS) -ldl -lpthread

ALL_TARGETS += $(FAULTMOD_SO)
TEST_BINS += $(FAULTMOD_SO)
