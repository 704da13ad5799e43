# demo: `make demo` runs the seed scenario live (demo/run-demo.sh): installs
# missing Debian packages, builds what the demo needs, provisions two
# SoftHSM2 tokens by the clone ceremony, runs baseline then hsmkeys through
# HAProxy, prints the tables, and cleans up.
#
# S1/S2 are nginx with the hsmkeys module when the module is already built
# (`make` first) or DEMO_NGINX=1; otherwise hsmkeys-demo-server, because
# configuring nginx's source alone takes over a minute and the demo from a
# fresh clone must stay near two minutes.  (Recursive = : the nginx fragment
# that defines NGX_B is included after this one.)
DEMO_NGINX ?= $(if $(wildcard $(B)/nginx/ngx_http_hsmkeys_module.so),1,)
DEMO_NEEDS = $(B)/hsmkeys-probe $(B)/hsmkeys-demo-server $(B)/hsmkeys-tool $(B)/tests/t-token \
             $(if $(DEMO_NGINX),$(NGX_B)/ngx_http_hsmkeys_module.so)

demo: deps
	@echo "demo: building what it needs$(if $(DEMO_NGINX), (with the nginx module))"
	@mkdir -p $(B)
	@$(MAKE) -s --no-print-directory -j$$(nproc) $(DEMO_NEEDS) >$(B)/demo-build.log 2>&1 || \
	  { tail -n 30 $(B)/demo-build.log; echo "demo: build failed (log: $(B)/demo-build.log)"; exit 1; }
	HSMKEYS_BUILD=$(CURDIR)/$(B) FLEET_SERVER=$(if $(DEMO_NGINX),nginx,demo-server) bash demo/run-demo.sh
