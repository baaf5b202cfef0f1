# make install / make uninstall (included by the top-level Makefile).
#
#   make install     the tools (dedupctl, dedup_check, dedup_dump) into SBINDIR, their
#                    man pages into MANDIR/man8, the systemd unit dedupctl.service into
#                    UNITDIR, and the module's sources with a dkms.conf into
#                    DKMSDIR; then, on the running host (no DESTDIR) with dkms
#                    installed, `dkms install` builds and installs the module for the
#                    running kernel (and DKMS rebuilds it for every new one).
#   make uninstall   removes all of it (dkms remove first, when it was added).
#
# Knobs (all optional): DESTDIR (a staging root: nothing is registered with dkms or
# systemd), PREFIX (/usr/local), SBINDIR, MANDIR, UNITDIR, DKMSDIR, DKMS (auto: use
# dkms when DESTDIR is empty and dkms is installed; 0: never; 1: required).
# docs/install.md says what each file is for.

DD_VERSION := 0.4.0
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
DKMSDIR    ?= /usr/src/dm-dedup-$(DD_VERSION)
DKMS       ?= auto

INSTALL_TOOLS := dedupctl dedup_check dedup_dump
INSTALL_MAN   := $(addprefix man/,$(addsuffix .8,$(INSTALL_TOOLS)))
# The module's sources, laid out as in this tree (kernel/Kbuild includes
# ../engine/engine.mk and the headers of ../include).
MODULE_SRCS := kernel/Kbuild $(filter-out %.mod.c,$(wildcard kernel/*.c)) $(wildcard kernel/*.h) \
	       engine/engine.mk $(wildcard engine/*.c) $(wildcard engine/*.h) \
	       $(wildcard include/dm-dedup/*.h)

.PHONY: install uninstall

install: $(addprefix build/bin/,$(INSTALL_TOOLS))
	@set -e; \
	case "$(DKMSDIR)" in /*/*) ;; *) echo "install: DKMSDIR='$(DKMSDIR)' is not a directory below /" >&2; exit 1 ;; esac; \
	case "$(DKMS)" in auto|0|1) ;; *) echo "install: DKMS=$(DKMS): auto, 0 or 1" >&2; exit 1 ;; esac; \
	install -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(MANDIR)/man8" "$(DESTDIR)$(UNITDIR)"; \
	for t in $(INSTALL_TOOLS); do install -m 0755 build/bin/$$t "$(DESTDIR)$(SBINDIR)/$$t"; done; \
	install -m 0644 $(INSTALL_MAN) "$(DESTDIR)$(MANDIR)/man8/"; \
	sed 's|@SBINDIR@|$(SBINDIR)|g' dist/dedupctl.service.in >"$(DESTDIR)$(UNITDIR)/dedupctl.service"; \
	chmod 0644 "$(DESTDIR)$(UNITDIR)/dedupctl.service"; \
	rm -rf "$(DESTDIR)$(DKMSDIR)"; \
	for f in $(MODULE_SRCS); do install -D -m 0644 $$f "$(DESTDIR)$(DKMSDIR)/$$f"; done; \
	sed 's|@VERSION@|$(DD_VERSION)|g' dist/dkms.conf.in >"$(DESTDIR)$(DKMSDIR)/dkms.conf"; \
	echo "install: tools in $(DESTDIR)$(SBINDIR), man pages in $(DESTDIR)$(MANDIR)/man8, unit in $(DESTDIR)$(UNITDIR), module sources in $(DESTDIR)$(DKMSDIR)"; \
	use=$(DKMS); \
	if [ "$$use" = auto ]; then \
		if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null; then use=1; else use=0; fi; \
	fi; \
	if [ "$$use" = 1 ]; then \
		[ -z "$(DESTDIR)" ] || { echo "install: DKMS=1 with DESTDIR: dkms registers on this host only" >&2; exit 1; }; \
		command -v dkms >/dev/null || { echo "install: DKMS=1 but dkms is not installed (apt-get install dkms)" >&2; exit 1; }; \
		dkms remove -m dm-dedup -v $(DD_VERSION) --all >/dev/null 2>&1 || true; \
		dkms add "$(DKMSDIR)"; \
		dkms install -m dm-dedup -v $(DD_VERSION); \
	else \
		echo "install: dkms not used: build the module with dkms install -m dm-dedup -v $(DD_VERSION), or make module"; \
	fi; \
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; \
		echo "install: enable activation at boot with: systemctl enable dedupctl.service"; \
	fi

uninstall:
	@set -e; \
	case "$(DKMSDIR)" in /*/*) ;; *) echo "uninstall: DKMSDIR='$(DKMSDIR)' is not a directory below /" >&2; exit 1 ;; esac; \
	if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null && dkms status -m dm-dedup -v $(DD_VERSION) 2>/dev/null | grep -q .; then \
		dkms remove -m dm-dedup -v $(DD_VERSION) --all; \
	fi; \
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
		systemctl disable dedupctl.service >/dev/null 2>&1 || true; \
	fi; \
	for t in $(INSTALL_TOOLS); do rm -f "$(DESTDIR)$(SBINDIR)/$$t" "$(DESTDIR)$(MANDIR)/man8/$$t.8"; done; \
	rm -f "$(DESTDIR)$(UNITDIR)/dedupctl.service"; \
	rm -rf "$(DESTDIR)$(DKMSDIR)"; \
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; \
	fi; \
	echo "uninstall: removed the tools, man pages, unit and module sources"
