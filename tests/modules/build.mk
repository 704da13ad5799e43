# tests/modules: hsmkeys against PKCS#11 modules other than SoftHSM2.
# nss-token drives NSS's softokn (tests/modules/test_nss_softokn.sh); it is a
# helper, not a suite, so its name does not end in _test.
NSS_TOKEN_BIN := $(B)/tests/nss-token

$(NSS_TOKEN_BIN): $(B)/obj/tests/modules/nss-token.o $(TEST_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

TEST_BINS += $(NSS_TOKEN_BIN)

# token-check: the same checks on any module named by a URI (tpm2-pkcs11).
TOKEN_CHECK_BIN := $(B)/tests/token-check

$(TOKEN_CHECK_BIN): $(B)/obj/tests/modules/token-check.o $(TEST_LIB_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

TEST_BINS += $(TOKEN_CHECK_BIN)
