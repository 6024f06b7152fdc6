# unitwright: build, install and package like a systemd component.
#
#   make                      build the binaries (release), man pages and completions
#   make install DESTDIR=... PREFIX=/usr
#   make check                cargo test, then install into a scratch DESTDIR and check the layout
#   make dist                 unitwright-VERSION.tar.gz (source, Cargo.lock, vendored crates)
#   make deb                  Debian package (dpkg-buildpackage -b in a staging copy)
#   make rpm                  RPM (rpmbuild -bb from `make dist`)
#
# Install paths come from `pkg-config systemd` (rebased onto PREFIX when PREFIX is not /usr)
# and can all be overridden on the command line.

PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
LIBEXECDIR  ?= $(PREFIX)/libexec
LIBDIR      ?= $(PREFIX)/lib
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/unitwright
SYSCONFDIR  ?= /etc

PKG_CONFIG  ?= pkg-config
# Rebase systemd's paths onto PREFIX (for /usr keep systemd's own, e.g. Debian's /lib).
PC_DEFINES  := $(if $(filter /usr,$(PREFIX)),,--define-variable=prefix=$(PREFIX) --define-variable=root_prefix=$(PREFIX))
pcvar = $(shell $(PKG_CONFIG) $(PC_DEFINES) --variable=$(1) $(2) 2>/dev/null)

SYSTEM_GENERATOR_DIR ?= $(or $(call pcvar,systemdsystemgeneratordir,systemd),$(LIBDIR)/systemd/system-generators)
USER_GENERATOR_DIR   ?= $(or $(call pcvar,systemdusergeneratordir,systemd),$(LIBDIR)/systemd/user-generators)
SYSTEM_UNIT_DIR      ?= $(or $(call pcvar,systemdsystemunitdir,systemd),$(LIBDIR)/systemd/system)
USER_UNIT_DIR        ?= $(or $(call pcvar,systemduserunitdir,systemd),$(LIBDIR)/systemd/user)
BASH_COMPLETION_DIR  ?= $(or $(call pcvar,completionsdir,bash-completion),$(DATADIR)/bash-completion/completions)
ZSH_COMPLETION_DIR   ?= $(DATADIR)/zsh/vendor-completions
FISH_COMPLETION_DIR  ?= $(DATADIR)/fish/vendor_completions.d
# Quadlet's search paths are fixed (quadlet-5.4.2 §2): the vendor dir for the system manager, and
# the admin dir every user manager reads (there is no vendor dir for user Quadlets).
QUADLET_SYSTEM_DIR   ?= /usr/share/containers/systemd
QUADLET_USERS_DIR    ?= $(SYSCONFDIR)/containers/systemd/users
TEMPLATE_DIR         ?= $(DATADIR)/unitwright/templates
GENERATOR_CONF_DIR   ?= $(LIBDIR)/unitwright

CARGO       ?= cargo
CARGO_FLAGS ?= --locked
PROFILE     ?= release
TARGET_DIR  ?= $(or $(CARGO_TARGET_DIR),target)
OUT         := $(TARGET_DIR)/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
BUILD       := $(TARGET_DIR)/dist-build
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,--profile $(PROFILE))
VERSION     := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

INSTALL     ?= install
# On a Debian host the rpm database is empty: skip the BuildRequires check there.
RPMBUILD_FLAGS ?= $(if $(wildcard /etc/debian_version),--nodeps)
QUADLET_UNITS := $(wildcard units/*.container units/*.volume units/*.network units/*.kube units/*.pod units/*.image units/*.build)
SYSTEMD_UNITS := $(wildcard units/*.service units/*.socket units/*.timer units/*.target units/*.path)
HAND_MAN      := $(wildcard doc/man/*.[1-8])

.PHONY: all build man completions install uninstall check check-install dist deb rpm clean-dist

all: build man completions

# The generator is built on its own: built together with the CLI, cargo would unify the
# library's features and link zbus/tokio/tera into it.
build:
	$(CARGO) build $(CARGO_FLAGS) $(PROFILE_FLAG) -p unitwright-generator
	$(CARGO) build $(CARGO_FLAGS) $(PROFILE_FLAG) -p unitwright --bin unitwright
	$(CARGO) build $(CARGO_FLAGS) $(PROFILE_FLAG) -p xtask

man: build
	UNITWRIGHT_DOCDIR=$(DOCDIR) $(OUT)/xtask man $(BUILD)/man
	cp $(HAND_MAN) $(BUILD)/man/

completions: build
	$(OUT)/xtask completions $(BUILD)/completions

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/unitwright \
	  $(DESTDIR)$(SYSTEM_GENERATOR_DIR) $(DESTDIR)$(USER_GENERATOR_DIR) \
	  $(DESTDIR)$(GENERATOR_CONF_DIR) $(DESTDIR)$(TEMPLATE_DIR) \
	  $(DESTDIR)$(QUADLET_SYSTEM_DIR) $(DESTDIR)$(QUADLET_USERS_DIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(BASH_COMPLETION_DIR) $(DESTDIR)$(ZSH_COMPLETION_DIR) $(DESTDIR)$(FISH_COMPLETION_DIR) \
	  $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 0755 $(OUT)/unitwright $(DESTDIR)$(BINDIR)/unitwright
	$(INSTALL) -m 0755 $(OUT)/unitwright-generator $(DESTDIR)$(LIBEXECDIR)/unitwright/unitwright-generator
	ln -sf $(LIBEXECDIR)/unitwright/unitwright-generator $(DESTDIR)$(SYSTEM_GENERATOR_DIR)/unitwright-system-generator
	ln -sf $(LIBEXECDIR)/unitwright/unitwright-generator $(DESTDIR)$(USER_GENERATOR_DIR)/unitwright-user-generator
	$(INSTALL) -m 0644 packaging/generator.conf $(DESTDIR)$(GENERATOR_CONF_DIR)/generator.conf
	$(if $(QUADLET_UNITS),$(INSTALL) -m 0644 $(QUADLET_UNITS) $(DESTDIR)$(QUADLET_SYSTEM_DIR)/)
	$(if $(QUADLET_UNITS),$(INSTALL) -m 0644 $(QUADLET_UNITS) $(DESTDIR)$(QUADLET_USERS_DIR)/)
	$(if $(SYSTEMD_UNITS),$(INSTALL) -d $(DESTDIR)$(SYSTEM_UNIT_DIR) $(DESTDIR)$(USER_UNIT_DIR))
	$(if $(SYSTEMD_UNITS),$(INSTALL) -m 0644 $(SYSTEMD_UNITS) $(DESTDIR)$(SYSTEM_UNIT_DIR)/)
	$(if $(SYSTEMD_UNITS),$(INSTALL) -m 0644 $(SYSTEMD_UNITS) $(DESTDIR)$(USER_UNIT_DIR)/)
	if [ -d templates ]; then cp -R --no-preserve=ownership templates/. $(DESTDIR)$(TEMPLATE_DIR)/; \
	  find $(DESTDIR)$(TEMPLATE_DIR) -type f -exec chmod 0644 {} +; fi
	$(INSTALL) -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(BUILD)/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(BUILD)/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 $(BUILD)/completions/unitwright.bash $(DESTDIR)$(BASH_COMPLETION_DIR)/unitwright
	$(INSTALL) -m 0644 $(BUILD)/completions/_unitwright $(DESTDIR)$(ZSH_COMPLETION_DIR)/_unitwright
	$(INSTALL) -m 0644 $(BUILD)/completions/unitwright.fish $(DESTDIR)$(FISH_COMPLETION_DIR)/unitwright.fish
	cp -R --no-preserve=ownership packaging/dropins $(DESTDIR)$(DOCDIR)/examples/
	find $(DESTDIR)$(DOCDIR)/examples -type f -exec chmod 0644 {} +
	$(INSTALL) -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/unitwright $(DESTDIR)$(LIBEXECDIR)/unitwright/unitwright-generator \
	  $(DESTDIR)$(SYSTEM_GENERATOR_DIR)/unitwright-system-generator \
	  $(DESTDIR)$(USER_GENERATOR_DIR)/unitwright-user-generator \
	  $(DESTDIR)$(GENERATOR_CONF_DIR)/generator.conf \
	  $(DESTDIR)$(MANDIR)/man1/unitwright*.1 $(DESTDIR)$(MANDIR)/man5/unitwright*.5 \
	  $(DESTDIR)$(MANDIR)/man8/unitwright*.8 \
	  $(DESTDIR)$(BASH_COMPLETION_DIR)/unitwright $(DESTDIR)$(ZSH_COMPLETION_DIR)/_unitwright \
	  $(DESTDIR)$(FISH_COMPLETION_DIR)/unitwright.fish
	for f in $(notdir $(QUADLET_UNITS)); do rm -f $(DESTDIR)$(QUADLET_SYSTEM_DIR)/$$f; done
	rm -rf $(DESTDIR)$(TEMPLATE_DIR) $(DESTDIR)$(DOCDIR)/examples
	for f in $(notdir $(wildcard docs/*.md)); do rm -f $(DESTDIR)$(DOCDIR)/$$f; done

check:
	$(CARGO) test $(CARGO_FLAGS) --workspace
	$(MAKE) check-install

# Installs into a scratch DESTDIR and checks it with packaging/check-install.sh (layout, man
# pages render, shipped and generated units pass systemd-analyze verify).
CHECK_VARS := BINDIR LIBEXECDIR MANDIR DOCDIR SYSTEM_GENERATOR_DIR USER_GENERATOR_DIR \
  SYSTEM_UNIT_DIR USER_UNIT_DIR BASH_COMPLETION_DIR ZSH_COMPLETION_DIR FISH_COMPLETION_DIR \
  QUADLET_SYSTEM_DIR QUADLET_USERS_DIR TEMPLATE_DIR GENERATOR_CONF_DIR

check-install:
	d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	  $(MAKE) install DESTDIR="$$d" && \
	  $(foreach v,$(CHECK_VARS),$(v)=$($(v))) packaging/check-install.sh "$$d"

# A source tarball that builds offline: crates vendored, .cargo/config.toml points at them.
dist:
	rm -rf $(BUILD)/unitwright-$(VERSION) && mkdir -p $(BUILD)/unitwright-$(VERSION)
	git ls-files -z | xargs -0 cp --parents -t $(BUILD)/unitwright-$(VERSION)
	cd $(BUILD)/unitwright-$(VERSION) && mkdir -p .cargo && \
	  $(CARGO) vendor --locked --versioned-dirs vendor > .cargo/config.toml
	tar -C $(BUILD) --sort=name --owner=0 --group=0 -czf $(BUILD)/unitwright-$(VERSION).tar.gz unitwright-$(VERSION)
	@echo $(BUILD)/unitwright-$(VERSION).tar.gz

# dpkg-buildpackage needs debian/ at the top of the source: build in a staging copy.
deb: dist
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb
	tar -C $(BUILD)/deb -xzf $(BUILD)/unitwright-$(VERSION).tar.gz
	cp -R packaging/debian $(BUILD)/deb/unitwright-$(VERSION)/debian
	cd $(BUILD)/deb/unitwright-$(VERSION) && dpkg-buildpackage -b -us -uc
	@ls $(BUILD)/deb/*.deb

rpm: dist
	rm -rf $(BUILD)/rpm && mkdir -p $(BUILD)/rpm/SOURCES
	cp $(BUILD)/unitwright-$(VERSION).tar.gz $(BUILD)/rpm/SOURCES/
	rpmbuild -bb $(RPMBUILD_FLAGS) --define '_topdir $(abspath $(BUILD)/rpm)' --define 'uw_version $(VERSION)' packaging/rpm/unitwright.spec
	@find $(BUILD)/rpm/RPMS -name '*.rpm'

clean-dist:
	rm -rf $(BUILD)
