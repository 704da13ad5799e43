# demo: `make demo` runs the seed scenario live (demo/run-demo.sh): installs
# missing Debian packages, builds what the demo needs, provisions two
# SoftHSM2 tokens by the clone ceremony, runs baseline then hsmkeys through
# HAProxy, prints the tables, and cleans up.
DEMO_NEEDS := $(B)/hsmkeys-probe $(B)/hsmkeys-demo-server $(B)/hsmkeys-tool $(B)/tests/t-token

demo: deps
	$(MAKE) --no-print-directory $(DEMO_NEEDS)
	HSMKEYS_BUILD=$(CURDIR)/$(B) bash demo/run-demo.sh
