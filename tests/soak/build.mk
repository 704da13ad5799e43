# tests/soak: `make soak` - the fleet (HAProxy round robin, two
# hsmkeys-demo-servers on their own SoftHSM2 tokens, 3 s epochs) under two
# reconnecting clients for SOAK_SECONDS (default 180; half TLS 1.3, half
# TLS 1.2), checking resumption, memory, fds and threads.  Not part of
# `make check` (takes SOAK_SECONDS + ~15 s).  See docs/SOAK.md.
SOAK_SECONDS ?= 180
SOAK_NEEDS = $(B)/hsmkeys-probe $(B)/hsmkeys-demo-server $(B)/tests/t-token

.PHONY: soak
soak: deps
	@mkdir -p $(B)
	@$(MAKE) -s --no-print-directory $(SOAK_NEEDS) >$(B)/soak-build.log 2>&1 || \
	  { tail -n 30 $(B)/soak-build.log; echo "soak: build failed (log: $(B)/soak-build.log)"; exit 1; }
	HSMKEYS_BUILD=$(CURDIR)/$(B) SOAK_SECONDS=$(SOAK_SECONDS) bash tests/soak/soak.sh
