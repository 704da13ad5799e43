# demo: `make demo` runs the seed scenario live (demo/run-demo.sh): installs
# missing Debian packages, builds what the demo needs, provisions two
# SoftHSM2 tokens by the clone ceremony, runs baseline then hsmkeys through
# HAProxy, prints the tables, and cleans up.
#
# S1/S2 are nginx with the hsmkeys module (building it configures nginx's
# source once: about 30 s on a quiet 2-core machine); DEMO_NGINX=0 runs
# hsmkeys-demo-server instead.  (Recursive = : the nginx fragment that
# defines NGX_B is included after this one.)
DEMO_NGINX ?= 1
DEMO_WITH_NGINX = $(filter 1,$(DEMO_NGINX))
DEMO_NEEDS = $(B)/hsmkeys-probe $(B)/hsmkeys-demo-server $(B)/hsmkeys-tool $(B)/tests/t-token \
             $(if $(DEMO_WITH_NGINX),$(NGX_B)/ngx_http_hsmkeys_module.so)

demo: deps
	@echo "demo: building what it needs$(if $(DEMO_WITH_NGINX), (with the nginx module))"
	@mkdir -p $(B)
	@$(MAKE) -s --no-print-directory -j$$(nproc) $(DEMO_NEEDS) >$(B)/demo-build.log 2>&1 || \
	  { tail -n 30 $(B)/demo-build.log; echo "demo: build failed (log: $(B)/demo-build.log)"; exit 1; }
	HSMKEYS_BUILD=$(CURDIR)/$(B) FLEET_SERVER=$(if $(DEMO_WITH_NGINX),nginx,demo-server) bash demo/run-demo.sh
