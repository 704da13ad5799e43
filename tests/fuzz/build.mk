# tests/fuzz: libFuzzer targets (clang), each with a seed corpus kept in
# tests/fuzz/corpus/<target>/.  Not part of `make`: `make fuzz` builds them
# into $(B)/fuzz/ (library compiled again with fuzzer instrumentation and
# ASan+UBSan) and runs each for FUZZ_TIME seconds; ci/fuzz.sh calls it.
#
#   make fuzz [FUZZ_TIME=30]         build and run every target
#   make fuzz-build                  build only
#   $(B)/fuzz/fuzz_ticket CORPUS...  run one by hand (libFuzzer flags)

FUZZ_CC      ?= clang
FUZZ_TIME    ?= 30
FUZZ_B       := $(B)/fuzz
FUZZ_TARGETS := fuzz_ticket fuzz_keyname fuzz_config fuzz_wrapblob fuzz_sessentry fuzz_sni fuzz_metrics_request
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
                -Ihsmkeys/include -Iengine/include -Ihsmkeys/src -Itests/lib -Itests/fault \
                -Itests/fuzz -Iprovisioning/src -Iengine/sesscache -Iengine/metrics $(P11KIT_CFLAGS)
FUZZ_COMMON  := $(LIB_SRCS) tests/lib/softhsm.c tests/lib/tls.c tests/fuzz/fuzz_env.c
FUZZ_COMMON_OBJS := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(FUZZ_COMMON))
FUZZ_BINS    := $(addprefix $(FUZZ_B)/,$(FUZZ_TARGETS))

$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_B)/fuzz_wrapblob: $(FUZZ_B)/obj/provisioning/src/blob.o
$(FUZZ_B)/fuzz_metrics_request: $(FUZZ_B)/obj/engine/metrics/hkm_http.o
$(FUZZ_B)/fuzz_sessentry: $(FUZZ_B)/obj/engine/sesscache/sc_seal.o $(FUZZ_B)/obj/engine/sesscache/sc_conf.o
$(FUZZ_BINS): $(FUZZ_B)/%: $(FUZZ_B)/obj/tests/fuzz/%.o $(FUZZ_COMMON_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LIB_LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

# Each target writes new inputs to a scratch corpus and only reads the seed
# corpus, so the repository's corpus changes only when someone copies in.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_B)/work/$$t $(FUZZ_B)/logs; \
	  echo "fuzz: $$t for $(FUZZ_TIME) s"; \
	  ASAN_OPTIONS=detect_leaks=1 $(FUZZ_B)/$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -timeout=20 -max_len=4096 -artifact_prefix=$(FUZZ_B)/logs/$$t- \
	    $(FUZZ_B)/work/$$t tests/fuzz/corpus/$$t > $(FUZZ_B)/logs/$$t.log 2>&1 \
	    || { tail -40 $(FUZZ_B)/logs/$$t.log; echo "fuzz: $$t FAILED"; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' $(FUZZ_B)/logs/$$t.log \
	    | sed "s/^/fuzz: $$t /"; \
	done
