# Cricket: a CRI container runtime. `make run` and `make test` do all set-up on a
# fresh Debian 12 machine as root (Debian packages, npm deps, build).
SHELL := /bin/bash
.DEFAULT_GOAL := build

# What the runtime needs: runc, conmon, CNI plugins, catatonit (subreaper and pod init),
# iptables, util-linux (unshare, nsenter, mount), iproute2, attr and zstd (layer unpack),
# socat and python3 (port-forward dialer, exec pty helper). What the tests add:
# docker-registry on loopback, busybox-static for the images they build, openssl for a
# throwaway TLS certificate, prometheus for promtool (checks the metrics text format;
# Debian has no smaller package with it; the tests never start its server), systemd for
# systemd-analyze verify of the shipped unit (nothing here needs systemd running), and
# gVisor's runsc for the runsc handler's runs. runsc comes from bookworm-backports
# (PKG/SUITE, see scripts/apt-ensure.sh): bookworm's own is too old (no systrap
# platform); the backports source is added if missing.
DEB_RUNTIME := runc conmon containernetworking-plugins catatonit iptables util-linux iproute2 attr zstd socat python3
DEB_TEST := docker-registry busybox-static openssl prometheus systemd runsc/bookworm-backports
PREFIX ?= /usr/local
# The suites for pods, containers and streaming that run a second time on gVisor
# (CRICKET_TEST_HANDLER=runsc); only when TEST_FILES is not narrowed. RUNSC_TEST_FILES=
# skips that run, RUNSC_TEST_FILES=<files> picks it.
ifeq ($(origin TEST_FILES),undefined)
RUNSC_TEST_FILES ?= $(addprefix dist/test/integration/,containers-lifecycle.test.js containers-input.test.js containers-security.test.js streaming-daemon.test.js pods-network.test.js)
endif
TEST_FILES ?= dist/test/unit dist/test/integration

.PHONY: deps deps-runtime deps-test build lint run test unit integration bench bench-compare soak test-vm install clean cni-default

deps-runtime:
	@./scripts/apt-ensure.sh $(DEB_RUNTIME)

deps-test:
	@./scripts/apt-ensure.sh $(DEB_RUNTIME) $(DEB_TEST)

# `npm install` rather than `npm ci`: npm ci rejects node-unix-socket's per-platform
# optional packages (they have no version in its manifest); install still follows the lock.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

build: node_modules/.installed
	npx tsc -p tsconfig.json
	@mkdir -p bin
	@install -m 0755 scripts/cricketd.sh bin/cricketd
	@install -m 0755 scripts/cricket.sh bin/cricket
	@install -m 0755 scripts/runsc-join.sh bin/cricket-runsc-join

# A default pod network (bridge + host-local + portmap + bandwidth; cricketd brings lo up itself) when the host has none.
cni-default:
	@if ! ls /etc/cni/net.d/*.conflist /etc/cni/net.d/*.conf >/dev/null 2>&1; then \
	  install -D -m 0644 packaging/10-cricket.conflist /etc/cni/net.d/10-cricket.conflist; \
	  echo "installed default CNI config /etc/cni/net.d/10-cricket.conflist"; fi

# The layering rules of ARCHITECTURE.md (.dependency-cruiser.cjs): a violation names its rule.
lint: node_modules/.installed
	npx depcruise src --config .dependency-cruiser.cjs --output-type err-long

run: deps-runtime build cni-default
	exec ./bin/cricketd

test: deps-test build lint
	node --test --test-concurrency=1 $(TEST_FILES)
	$(if $(RUNSC_TEST_FILES),CRICKET_TEST_HANDLER=runsc node --test --test-concurrency=1 $(RUNSC_TEST_FILES))

unit: build
	@./scripts/apt-ensure.sh prometheus
	node --test dist/test/unit

integration: deps-test build
	node --test --test-concurrency=1 dist/test/integration
	$(if $(RUNSC_TEST_FILES),CRICKET_TEST_HANDLER=runsc node --test --test-concurrency=1 $(RUNSC_TEST_FILES))

bench: deps-test build
	node dist/bench/run.js

# Cricket and Debian's containerd side by side (bench/compare/main.ts), each on its own
# private everything; BENCH_COMPARE=... picks rows (see DEVELOPERS.md).
bench-compare: deps-test build
	@./scripts/apt-ensure.sh containerd
	node dist/bench/compare/main.js

# Kubelet-shaped churn against one daemon with SIGKILL + restarts, then a leak check
# (not part of `make test`): SOAK_MINUTES (default 30), SOAK_KILL_SECONDS (240), more in DEVELOPERS.md.
soak: deps-test build lint
	node dist/test/soak/soak.js

# The integration suites on cgroup v2 with systemd as PID 1, in a Debian 12 guest under
# qemu (TCG), once with cgroup_driver "cgroupfs" and once with "systemd" (not part of
# `make test`). The guest image is built once into /var/cache/cricket-vm/<recipe hash>
# (CRICKET_VM_CACHE); VM_TEST_FILES and VM_DRIVERS narrow a run (scripts/vm/test-vm.sh).
test-vm: build
	@./scripts/apt-ensure.sh qemu-system-x86 debootstrap e2fsprogs
	./scripts/vm/test-vm.sh

install: build
	install -d $(PREFIX)/lib/cricket /etc/cricket/cricket.d
	cp -r dist node_modules package.json $(PREFIX)/lib/cricket/
	install -d $(PREFIX)/lib/cricket/bin
	install -m 0755 scripts/cricketd.sh $(PREFIX)/lib/cricket/bin/cricketd
	install -m 0755 scripts/cricket.sh $(PREFIX)/lib/cricket/bin/cricket
	install -m 0755 scripts/runsc-join.sh $(PREFIX)/lib/cricket/bin/cricket-runsc-join
	ln -sf $(PREFIX)/lib/cricket/bin/cricketd $(PREFIX)/bin/cricketd
	ln -sf $(PREFIX)/lib/cricket/bin/cricket $(PREFIX)/bin/cricket
	@[ -f /etc/cricket/cricket.toml ] || ./bin/cricket config --defaults > /etc/cricket/cricket.toml
	install -D -m 0644 packaging/cricketd.service /etc/systemd/system/cricketd.service
	@echo "installed; start with: systemctl enable --now cricketd (or run $(PREFIX)/bin/cricketd)"

clean:
	rm -rf dist bin
