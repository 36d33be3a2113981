# bufferengine: the one Makefile.
#
# Sources are found by wildcard, so a new file joins the build without an edit here:
#   shm/*.c                      -> libbufferengine
#   client/*.c without '-'       -> libbufferengine;   client/NAME-X.c -> program NAME-X
#   server/*.c                   -> libserver.a, except the programs
#                                   bufferengined.c, be-read.c and shm-dump.c
#   tests/test_NAME.c            -> a Check suite NAME_suite(), run by tests/check_main.c
#   tests/helper-X.c             -> helper program $(BUILD)/tests/helper-X
#   tests/bench/X.c              -> benchmark $(BUILD)/bench/X (make bench only)
#   tests/fuzz/fuzz_X.c          -> libFuzzer target $(BUILD)/fuzz/fuzz_X (make fuzz only,
#                                   with clang); also linked into the tests, which replay
#                                   tests/fuzz/corpus/X/ and regress/X/ through it
#   any other tests/*.c          -> support code linked into tests, helpers and benchmarks
#
# make V=1 shows full commands.  make SANITIZE=address,undefined (or thread) builds
# into build-address-undefined/ (build-thread/) so plain and sanitized objects never mix.
# Missing packages are installed by scripts/deps.sh before anything is built.

MAKEFLAGS += -r
.SUFFIXES:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

comma := ,

SANITIZE ?=
BUILD ?= build$(if $(SANITIZE),-$(subst $(comma),-,$(SANITIZE)))
ABS_BUILD := $(abspath $(BUILD))
OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin
LIB := $(BUILD)/lib

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system

# The version and the soname's major come from the public header.
VERSION := $(or $(shell sed -n 's/^\#define BE_VERSION_STRING "\(.*\)"/\1/p' include/bufferengine.h 2>/dev/null),0.1.0)
VERSION_MAJOR := $(firstword $(subst ., ,$(VERSION)))

# ---------------------------------------------------------------------------
# Packages.  Before building anything, make sure the -dev packages are there;
# if not (or if pkg-config itself is missing), run scripts/deps.sh once.
# AUTO_DEPS=0 turns that off.

PKGS := liburing libbsd check inih
NODEPS_GOALS := clean distclean uninstall deps help
AUTO_DEPS ?= 1

ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
ifeq ($(findstring n,$(firstword -$(MAKEFLAGS))),)
ifeq ($(AUTO_DEPS),1)
ifneq ($(shell command -v pkg-config >/dev/null 2>&1 && pkg-config --exists $(PKGS) && echo ok),ok)
$(info bufferengine: packages missing (pkg-config: $(PKGS)); running scripts/deps.sh)
DEPS_RC := $(shell bash scripts/deps.sh >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error scripts/deps.sh failed (exit $(DEPS_RC)); install the packages it names, then run make again)
endif
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && echo ok),ok)
$(error after scripts/deps.sh, pkg-config still fails: $(shell if command -v pkg-config >/dev/null; \
	then pkg-config --print-errors --exists $(PKGS) 2>&1; else echo pkg-config is missing; fi))
endif
endif
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags liburing libbsd inih 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(or $(shell pkg-config --libs check 2>/dev/null),-lcheck)
endif

# ---------------------------------------------------------------------------
# Flags.  CFLAGS, CPPFLAGS and LDFLAGS given on the command line are added last.

OPTFLAGS ?= -O2 -g
WARNFLAGS := -Wall -Wextra -Werror
ifneq ($(SANITIZE),)
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif

BE_CFLAGS = -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) -D_GNU_SOURCE -I. -Iinclude -fPIC \
	    -MMD -MP $(PKG_CFLAGS) $(SANFLAGS) $(BE_DIR_CFLAGS) $(CPPFLAGS) $(CFLAGS)
BE_LDFLAGS = $(SANFLAGS) -Wl,--as-needed $(LDFLAGS)

# What every program links after the project's archives.
LIBS := -luring -lbsd -linih -lpthread
# What libbufferengine.so itself needs (the shm core and the client).
LIB_LIBS := -lbsd -lpthread

# Tests find the built programs, the helpers and the tree through these.
TEST_DEFS := -DBE_BIN_DIR='"$(ABS_BUILD)/bin"' -DBE_TEST_DIR='"$(ABS_BUILD)/tests"' \
	     -DBE_SRC_DIR='"$(CURDIR)"'
$(OBJ)/tests/%.o: BE_DIR_CFLAGS = $(TEST_DEFS) -I$(BUILD)/tests $(CHECK_CFLAGS)
# A fuzz target in the tests: its entry point renamed fuzz_X_one (tests/test_fuzzreplay.c).
$(OBJ)/tests/fuzz/%.o: BE_DIR_CFLAGS = -DLLVMFuzzerTestOneInput=$(basename $(@F))_one

# ---------------------------------------------------------------------------
# Sources.

SERVER_PROG_NAMES := bufferengined be-read shm-dump

SHM_SRCS := $(wildcard shm/*.c)
CLIENT_SRCS := $(wildcard client/*.c)
CLIENT_PROG_SRCS := $(foreach f,$(CLIENT_SRCS),$(if $(findstring -,$(notdir $(f))),$(f)))
CLIENT_LIB_SRCS := $(filter-out $(CLIENT_PROG_SRCS),$(CLIENT_SRCS))
SERVER_PROG_SRCS := $(wildcard $(SERVER_PROG_NAMES:%=server/%.c))
SERVER_LIB_SRCS := $(filter-out $(SERVER_PROG_NAMES:%=server/%.c),$(wildcard server/*.c))
TEST_SRCS := $(wildcard tests/test_*.c)
HELPER_SRCS := $(wildcard tests/helper-*.c)
TESTSUP_SRCS := $(filter-out $(TEST_SRCS) $(HELPER_SRCS) tests/check_main.c,$(wildcard tests/*.c))
BENCH_SRCS := $(wildcard tests/bench/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)

TEST_NAMES := $(patsubst tests/test_%.c,%,$(TEST_SRCS))

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

LIBBE_OBJS := $(call objs,$(SHM_SRCS) $(CLIENT_LIB_SRCS))
SERVER_OBJS := $(call objs,$(SERVER_LIB_SRCS))
TESTSUP_OBJS := $(call objs,$(TESTSUP_SRCS))
TEST_OBJS := $(call objs,tests/check_main.c $(TEST_SRCS) $(FUZZ_SRCS))

LIBBE_A := $(LIB)/libbufferengine.a
SONAME := libbufferengine.so.$(VERSION_MAJOR)
SO_REAL := libbufferengine.so.$(VERSION)
LIBBE_SO := $(LIB)/libbufferengine.so
LIBBE_SO_FILES := $(LIB)/$(SO_REAL) $(LIB)/$(SONAME) $(LIBBE_SO)
LIBSERVER_A := $(LIB)/libserver.a
TESTSUP_A := $(BUILD)/tests/libtestsupport.a
VERSION_SCRIPT := client/libbufferengine.map

CLIENT_PROGS := $(patsubst client/%.c,$(BIN)/%,$(CLIENT_PROG_SRCS))
SERVER_PROGS := $(patsubst server/%.c,$(BIN)/%,$(SERVER_PROG_SRCS))
PROGS := $(strip $(SERVER_PROGS) $(CLIENT_PROGS))
HELPERS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(HELPER_SRCS))
CHECK_MAIN := $(BUILD)/tests/check_main
SUITES_H := $(BUILD)/tests/suites.h
BENCH_PROGS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

ALL_OBJS := $(call objs,$(SHM_SRCS) $(CLIENT_SRCS) $(SERVER_LIB_SRCS) $(SERVER_PROG_SRCS) \
	      $(TESTSUP_SRCS) $(HELPER_SRCS) $(BENCH_SRCS)) $(TEST_OBJS)

# ---------------------------------------------------------------------------
# Quiet output: one short line per target unless V=1.

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = printf '  %-7s %s\n' '$(1)' '$(2)';
endif

# ---------------------------------------------------------------------------
# Targets.

.PHONY: all check run bench install uninstall clean distclean deps help FORCE

all: $(LIBBE_A) $(LIBBE_SO_FILES) $(PROGS)

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(call msg,CC,$<)$(CC) $(BE_CFLAGS) -c -o $@ $<

$(LIBBE_A): $(LIBBE_OBJS)
$(LIBSERVER_A): $(SERVER_OBJS)
$(TESTSUP_A): $(TESTSUP_OBJS)
$(LIBBE_A) $(LIBSERVER_A) $(TESTSUP_A):
	@mkdir -p $(@D)
	$(Q)$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(LIB)/$(SO_REAL): $(LIBBE_OBJS) $(VERSION_SCRIPT)
	@mkdir -p $(@D)
	$(Q)$(call msg,LD,$@)$(CC) -shared -Wl,-soname,$(SONAME) \
		-Wl,--version-script=$(VERSION_SCRIPT) -Wl,--no-undefined $(BE_LDFLAGS) \
		-o $@ $(LIBBE_OBJS) $(LIB_LIBS)

$(LIB)/$(SONAME): $(LIB)/$(SO_REAL)
	$(Q)$(call msg,LN,$@)ln -sf $(SO_REAL) $@

$(LIBBE_SO): $(LIB)/$(SONAME)
	$(Q)$(call msg,LN,$@)ln -sf $(SONAME) $@

# Every program links statically with the project's archives.
$(SERVER_PROGS): $(BIN)/%: $(OBJ)/server/%.o $(LIBSERVER_A) $(LIBBE_A)
$(CLIENT_PROGS): $(BIN)/%: $(OBJ)/client/%.o $(LIBBE_A)
$(HELPERS): $(BUILD)/tests/%: $(OBJ)/tests/%.o $(TESTSUP_A) $(LIBSERVER_A) $(LIBBE_A)
$(BENCH_PROGS): $(BUILD)/bench/%: $(OBJ)/tests/bench/%.o $(TESTSUP_A) $(LIBSERVER_A) $(LIBBE_A)
$(SERVER_PROGS) $(CLIENT_PROGS):
	@mkdir -p $(@D)
	$(Q)$(call msg,LD,$@)$(CC) $(BE_LDFLAGS) -o $@ $^ $(LIBS)
$(HELPERS) $(BENCH_PROGS):
	@mkdir -p $(@D)
	$(Q)$(call msg,LD,$@)$(CC) $(BE_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

# The suite list: one SUITE(name) line per tests/test_NAME.c.  Rewritten only when
# the list changes, so that check_main.o is not rebuilt on every run.
$(SUITES_H): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '/* generated by the Makefile from tests/test_*.c */' \
		$(foreach n,$(TEST_NAMES),'SUITE($(n))') > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; \
	else $(call msg,GEN,$@)mv -f $@.tmp $@; fi

# The test build of the daemon: the same sources with -DBE_TEST_HOOKS (server/hooks.h:
# crash points, fault injection, the sync journal), for the crash tests only.
HOOKS_OBJ := $(BUILD)/obj-hooks
HOOKS_DAEMON := $(BUILD)/tests/bufferengined-hooks
HOOKS_OBJS := $(patsubst %.c,$(HOOKS_OBJ)/%.o,$(SERVER_LIB_SRCS) server/bufferengined.c)

$(HOOKS_OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(call msg,CC,$< [hooks])$(CC) $(BE_CFLAGS) -DBE_TEST_HOOKS -c -o $@ $<

$(HOOKS_DAEMON): $(HOOKS_OBJS) $(LIBBE_A)
	@mkdir -p $(@D)
	$(Q)$(call msg,LD,$@)$(CC) $(BE_LDFLAGS) -o $@ $^ $(LIBS)

$(OBJ)/tests/check_main.o: $(SUITES_H)

$(CHECK_MAIN): $(TEST_OBJS) $(TESTSUP_A) $(LIBSERVER_A) $(LIBBE_A)
	@mkdir -p $(@D)
	$(Q)$(call msg,LD,$@)$(CC) $(BE_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

# Sanitized tests run slower: give Check's per-test timeouts room; and make
# UBSan's reports fail the test (by default it prints and carries on).
CHECK_ENV := $(if $(SANITIZE),CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-4} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1})

check: all $(CHECK_MAIN) $(HELPERS) $(HOOKS_DAEMON)
	$(Q)$(call msg,CHECK,$(CHECK_MAIN))$(CHECK_ENV) $(CHECK_MAIN)

run: all
	$(Q)bash scripts/demo.sh $(BUILD)

bench: all $(BENCH_PROGS)
	$(Q)if [ -f scripts/bench.sh ]; then bash scripts/bench.sh $(BUILD); \
	else echo "bench: built $(or $(BENCH_PROGS),nothing); scripts/bench.sh is not there yet"; fi

deps:
	$(Q)bash scripts/deps.sh

# ---------------------------------------------------------------------------
# Fuzzing.  make fuzz builds every tests/fuzz/fuzz_X.c with clang, libFuzzer,
# ASan and UBSan (the project's sources instrumented too) into $(BUILD)/fuzz/,
# then runs each for FUZZ_SECONDS on its seeds (tests/fuzz/corpus/X/ and
# regress/X/, read only), growing $(BUILD)/fuzz/corpus/X/, and prints the
# executions and coverage of each; a crash goes to $(BUILD)/fuzz/artifacts/X/.
# FUZZ_TARGETS="codec config" runs only those.  No clang with libFuzzer here:
# scripts/deps.sh --fuzz installs it.  make check replays every seed and
# regression input through the same files built with $(CC) (fuzz_targets.h).

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang-14
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_LIB := $(FUZZ_DIR)/libfuzzbe.a
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(SHM_SRCS) $(SERVER_LIB_SRCS))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -std=gnu11 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -D_GNU_SOURCE -I. \
	      -Iinclude $(PKG_CFLAGS) $(FUZZ_SAN) $(FUZZ_COV) -MMD -MP
# Coverage feedback from the code under test only, not from the targets' own checks.
FUZZ_COV := -fsanitize=fuzzer-no-link
$(FUZZ_DIR)/obj/tests/fuzz/%.o: FUZZ_COV :=
FUZZ_TARGETS_H := $(BUILD)/tests/fuzz_targets.h

.PHONY: fuzz fuzz-build fuzz-deps

fuzz: fuzz-build
	$(Q)bash tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

# clang with libFuzzer, or scripts/deps.sh --fuzz.
fuzz-deps:
	@mkdir -p $(FUZZ_DIR)
	$(Q)if ! command -v $(FUZZ_CC) >/dev/null 2>&1 || \
		! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' | \
		$(FUZZ_CC) -fsanitize=fuzzer -x c - -o $(FUZZ_DIR)/.probe >/dev/null 2>&1; then \
		echo "fuzz: no $(FUZZ_CC) with libFuzzer: running scripts/deps.sh --fuzz"; \
		bash scripts/deps.sh --fuzz; \
	fi; rm -f $(FUZZ_DIR)/.probe

$(FUZZ_DIR)/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(@D)
	$(Q)$(call msg,CC,$< [fuzz])$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@mkdir -p $(@D)
	$(Q)$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $^

# Made by a pattern chain: kept, not removed as intermediate files.
.SECONDARY: $(FUZZ_NAMES:%=$(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o)

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(Q)$(call msg,LD,$@)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LIBS)

# The seed corpora, from the project's encoders (tests/fuzz/gen_seeds.c).
FUZZ_SEEDS_BIN := $(FUZZ_DIR)/gen_seeds

.PHONY: fuzz-seeds
fuzz-seeds: $(FUZZ_SEEDS_BIN)
	$(Q)$(call msg,SEEDS,tests/fuzz/corpus)$(FUZZ_SEEDS_BIN) tests/fuzz/corpus

$(FUZZ_SEEDS_BIN): $(OBJ)/tests/fuzz/gen_seeds.o $(LIBSERVER_A) $(LIBBE_A)
	@mkdir -p $(@D)
	$(Q)$(call msg,LD,$@)$(CC) $(BE_LDFLAGS) -o $@ $^ $(LIBS)

# The targets' list for the replay test: FUZZ_TARGET(X) for each tests/fuzz/fuzz_X.c.
$(FUZZ_TARGETS_H): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '/* generated by the Makefile from tests/fuzz/fuzz_*.c */' \
		$(foreach n,$(FUZZ_NAMES),'FUZZ_TARGET($(n))') > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; \
	else $(call msg,GEN,$@)mv -f $@.tmp $@; fi

$(OBJ)/tests/test_fuzzreplay.o: $(FUZZ_TARGETS_H)

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_NAMES:%=$(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.d) \
	 $(OBJ)/tests/fuzz/gen_seeds.d

# ---------------------------------------------------------------------------
# Lint.  make lint runs cppcheck over shm/, client/ and server/ (server/ also
# as the test build, -DBE_TEST_HOOKS), then clang-tidy with .clang-tidy on
# each of their .c files (server/hooks.c as the test build: it is empty
# otherwise).  Any finding fails.  A file that passed gets a stamp in
# $(BUILD)/lint/ and is checked again only when it, a header it includes or
# .clang-tidy changes.  No cppcheck or clang-tidy here: scripts/deps.sh --lint.

CPPCHECK ?= cppcheck
CLANG_TIDY ?= clang-tidy-14
LINT_DIR := $(BUILD)/lint
LINT_SRCS := $(SHM_SRCS) $(CLIENT_SRCS) $(SERVER_LIB_SRCS) $(SERVER_PROG_SRCS)
LINT_HDRS := $(wildcard shm/*.h client/*.h server/*.h include/*.h)
LINT_STAMPS := $(patsubst %.c,$(LINT_DIR)/%.tidy,$(LINT_SRCS))
CPPCHECK_STAMP := $(LINT_DIR)/cppcheck.stamp
CPPCHECK_FLAGS := -q --enable=warning,portability,performance --std=c11 -I. -Iinclude \
		  -D_GNU_SOURCE --inline-suppr --error-exitcode=1
LINT_CPPFLAGS = -std=gnu11 -D_GNU_SOURCE -I. -Iinclude $(PKG_CFLAGS)
$(LINT_DIR)/server/hooks.tidy: LINT_CPPFLAGS += -DBE_TEST_HOOKS

.PHONY: lint lint-deps

lint: $(CPPCHECK_STAMP) $(LINT_STAMPS)

lint-deps:
	$(Q)if ! command -v $(CPPCHECK) >/dev/null 2>&1 || \
		! command -v $(CLANG_TIDY) >/dev/null 2>&1; then \
		echo "lint: no $(CPPCHECK) or no $(CLANG_TIDY): running scripts/deps.sh --lint"; \
		bash scripts/deps.sh --lint; \
	fi

$(CPPCHECK_STAMP): $(LINT_SRCS) $(LINT_HDRS) | lint-deps
	@mkdir -p $(@D)
	$(Q)$(call msg,CPPCHK,shm client server)$(CPPCHECK) $(CPPCHECK_FLAGS) shm client server
	$(Q)$(call msg,CPPCHK,server [hooks])$(CPPCHECK) $(CPPCHECK_FLAGS) -DBE_TEST_HOOKS server
	@touch $@

# cppcheck first.  The header dependencies come from $(CC) -MM; clang-tidy's
# "N warnings generated." (about system headers, not shown) is left out.
$(LINT_DIR)/%.tidy: %.c .clang-tidy | $(CPPCHECK_STAMP)
	@mkdir -p $(@D)
	$(Q)$(call msg,TIDY,$<)$(CC) $(LINT_CPPFLAGS) -MM -MP -MT $@ -MF $(@:.tidy=.d) $< && \
	{ $(CLANG_TIDY) --quiet $< -- $(LINT_CPPFLAGS) >$@.log 2>&1; rc=$$?; \
	  grep -Ev '^[0-9]+ warnings? generated\.$$' $@.log; rm -f $@.log; test $$rc = 0; } && \
	touch $@

-include $(LINT_STAMPS:.tidy=.d)

# ---------------------------------------------------------------------------
# Install.  DESTDIR is prepended to every path; the .pc file and the unit name
# PREFIX, SYSCONFDIR and BINDIR as they will be once installed.
#
#   programs              $(BINDIR)                   libraries  $(LIBDIR)
#   bufferengine.h        $(INCLUDEDIR)               .pc        $(PKGCONFIGDIR)
#   man pages             $(MANDIR)/man1, man3, man8  (every client/*.N, server/*.N)
#   bufferengined.conf    $(SYSCONFDIR)/bufferengine  (from the example; never overwritten)
#   bufferengined.service $(UNITDIR)
#
# Neither systemctl nor useradd is run: see README.md, "Run it as a service".
# uninstall removes exactly these files, except a config that differs from the
# example (edited: kept, with a note), and the config directory once empty.

INSTALLED_PROGS := $(notdir $(PROGS))
MAN1_PAGES := $(wildcard client/*.1 server/*.1)
MAN3_PAGES := $(wildcard client/*.3 server/*.3)
MAN8_PAGES := $(wildcard client/*.8 server/*.8)
CONF_EXAMPLE := scripts/bufferengined.conf.example
CONF_DIR := $(DESTDIR)$(SYSCONFDIR)/bufferengine
CONF_FILE := $(CONF_DIR)/bufferengined.conf
UNIT_IN := scripts/bufferengined.service
UNIT_FILE := $(DESTDIR)$(UNITDIR)/bufferengined.service
# A path under PREFIX as the .pc file writes it, ${prefix}/..., so that
# pkg-config --define-prefix (or --define-variable=prefix=) can move it.
pc_path = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

install: all
	$(Q)$(call msg,INSTALL,$(DESTDIR)$(PREFIX))true
	$(Q)install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(MANDIR)/man8 $(CONF_DIR) $(DESTDIR)$(UNITDIR)
	$(Q)$(if $(PROGS),install -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/)
	$(Q)install -m 0644 $(LIBBE_A) $(DESTDIR)$(LIBDIR)/
	$(Q)install -m 0755 $(LIB)/$(SO_REAL) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libbufferengine.so
	$(Q)install -m 0644 include/bufferengine.h $(DESTDIR)$(INCLUDEDIR)/
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call pc_path,$(LIBDIR))|g' \
		-e 's|@INCLUDEDIR@|$(call pc_path,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(VERSION)|g' \
		-e 's|@LIB_LIBS@|$(LIB_LIBS)|g' \
		bufferengine.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/bufferengine.pc
	$(Q)$(if $(MAN1_PAGES),install -m 0644 $(MAN1_PAGES) $(DESTDIR)$(MANDIR)/man1/)
	$(Q)$(if $(MAN3_PAGES),install -m 0644 $(MAN3_PAGES) $(DESTDIR)$(MANDIR)/man3/)
	$(Q)$(if $(MAN8_PAGES),install -m 0644 $(MAN8_PAGES) $(DESTDIR)$(MANDIR)/man8/)
	$(Q)if [ -e $(CONF_FILE) ] || [ -L $(CONF_FILE) ]; then \
		echo "  KEEP    $(CONF_FILE) (exists: not replaced by the example)"; \
	else install -m 0644 $(CONF_EXAMPLE) $(CONF_FILE); fi
	$(Q)sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		$(UNIT_IN) > $(UNIT_FILE).tmp && chmod 0644 $(UNIT_FILE).tmp && \
		mv -f $(UNIT_FILE).tmp $(UNIT_FILE)
	$(Q)$(if $(DESTDIR),true,if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi)

uninstall:
	$(Q)$(call msg,RM,$(DESTDIR)$(PREFIX))rm -f \
		$(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALLED_PROGS)) \
		$(DESTDIR)$(LIBDIR)/libbufferengine.a $(DESTDIR)$(LIBDIR)/$(SO_REAL) \
		$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libbufferengine.so \
		$(DESTDIR)$(INCLUDEDIR)/bufferengine.h $(DESTDIR)$(PKGCONFIGDIR)/bufferengine.pc \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1_PAGES))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3_PAGES))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8_PAGES))) \
		$(UNIT_FILE)
	$(Q)if cmp -s $(CONF_EXAMPLE) $(CONF_FILE); then rm -f $(CONF_FILE); \
	elif [ -e $(CONF_FILE) ]; then \
		echo "  KEEP    $(CONF_FILE) (edited: remove it by hand)"; fi
	$(Q)if [ -d $(CONF_DIR) ]; then rmdir $(CONF_DIR) 2>/dev/null || true; fi

# ---------------------------------------------------------------------------

clean:
	$(Q)$(call msg,CLEAN,build* $(BUILD) demo-run)rm -rf build $(wildcard build-*) $(BUILD) demo-run

distclean: clean
	$(Q)rm -rf bench-results

help:
	@echo 'make [V=1] [SANITIZE=address,undefined|thread] [BUILD=dir] TARGET'
	@echo '  all        libbufferengine.a, libbufferengine.so, programs in $(BIN)  (default)'
	@echo '  check      build, then run every Check suite (BE_SUITE=name, BE_VERBOSE=1)'
	@echo '  run        the demo: scripts/demo.sh with the built programs'
	@echo '  bench      build tests/bench/*.c, run scripts/bench.sh'
	@echo '  fuzz       build tests/fuzz/fuzz_*.c with clang and libFuzzer, run each for'
	@echo '             FUZZ_SECONDS (60); FUZZ_TARGETS= picks some; fuzz-seeds rewrites'
	@echo '             the seed corpora in tests/fuzz/corpus'
	@echo '  install    PREFIX=$(PREFIX), DESTDIR=; also SYSCONFDIR, UNITDIR, MANDIR; uninstall undoes it'
	@echo '  lint       cppcheck, then clang-tidy (.clang-tidy) over shm/ client/ server/'
	@echo '  deps       install the Debian packages the build needs'
	@echo '  clean      remove every build directory and demo-run/; distclean: bench-results/ too'

FORCE:

-include $(ALL_OBJS:.o=.d) $(HOOKS_OBJS:.o=.d)
