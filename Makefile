# Makefile: builds bin/phase1, bin/phase2, bin/phase3 (C11, -Werror) against
# libpq, jansson and libuuid found through pkg-config; runs the tests (make unit, check-fast,
# check) and the demo.
# SANITIZE=1 builds them with AddressSanitizer and UBSan; `make fuzz` runs the
# libFuzzer targets of tests/fuzz.
CC      ?= cc
PKGS    := libpq jansson uuid
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -pthread -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers \
           -Icommon -Ibuild $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lpq -ljansson -luuid) -pthread

# SANITIZE=1: the same bin/, from objects of their own in build/san, so a
# sanitized and a plain build never share an object; build/mode relinks bin/
# whenever SANITIZE changes.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ifeq ($(SANITIZE),1)
OBJDIR    := build/san
CFLAGS    += $(SAN_FLAGS)
BUILD_MODE := sanitize
else
OBJDIR    := build
BUILD_MODE := plain
endif

# common/ is in layers, each a folder (common/README.md): core, engine, ops and
# its operation families (backfill's identity providers a level deeper);
# objects mirror that tree under build/.
COMMON_SRC := $(sort $(shell find common -name '*.c'))
COMMON_HDR := $(sort $(shell find common -name '*.h'))
COMMON_OBJ := $(COMMON_SRC:%.c=$(OBJDIR)/%.o) $(OBJDIR)/sqltext.o
BINS       := bin/phase1 bin/phase2 bin/phase3 bin/service-file bin/rehearse-report

.PHONY: all unit check-fast check demo bench clean lint format fuzz install uninstall man FORCE
.SECONDARY:
all: $(BINS)

# what the three binaries share beside common/: their table of options
PHASES_OBJ := $(OBJDIR)/phases/options.o

bin/phase%: $(OBJDIR)/phase%.o $(PHASES_OBJ) $(COMMON_OBJ) build/mode | bin
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(LDFLAGS) $(LDLIBS)

# scripts/rehearse's helper: a connection string as a section of a libpq service file
bin/service-file: $(OBJDIR)/service_file.o $(OBJDIR)/common/core/conninfo_secrets.o $(OBJDIR)/common/core/strbuf.o build/mode | bin
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(LDFLAGS) $(LDLIBS)

$(OBJDIR)/service_file.o: scripts/lib/service_file.c common/core/conninfo_secrets.h | $(OBJDIR)
	$(CC) $(CFLAGS) -c -o $@ $<

# scripts/rehearse's report writer: the rehearsal's facts as JSON, the JSON as Markdown
REPORT_OBJ := $(OBJDIR)/report.o $(OBJDIR)/report_json.o $(OBJDIR)/report_md.o
bin/rehearse-report: $(REPORT_OBJ) build/mode | bin
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(LDFLAGS) $(LDLIBS) -lm

$(REPORT_OBJ): $(OBJDIR)/%.o: scripts/lib/%.c scripts/lib/report.h | $(OBJDIR)
	$(CC) $(CFLAGS) -c -o $@ $<

# unit tests of the functions that need no database (tests/t01_units.sh runs them):
# the harness (unit.c) and a file per layer, their objects in $(OBJDIR)/unit
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ := $(UNIT_SRC:tests/unit/%.c=$(OBJDIR)/unit/%.o)
$(OBJDIR)/unit-tests: $(UNIT_OBJ) $(PHASES_OBJ) $(COMMON_OBJ) build/mode
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(LDFLAGS) $(LDLIBS)

$(OBJDIR)/unit/%.o: tests/unit/%.c tests/unit/unit.h $(COMMON_HDR) build/sqltext.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OBJDIR)/common/%.o: common/%.c $(COMMON_HDR) build/sqltext.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OBJDIR)/phase%.o: phases/phase%.c phases/help.h $(COMMON_HDR) | $(OBJDIR)
	$(CC) $(CFLAGS) -c -o $@ $<

$(PHASES_OBJ): $(OBJDIR)/phases/%.o: phases/%.c phases/help.h $(COMMON_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# sql/state.sql compiled in, so the binaries need no files beside them (&: one run
# makes both files; two would leave sqltext.h newer than objects and relink every time)
build/sqltext.c build/sqltext.h &: sql/state.sql scripts/embed-sql | build
	scripts/embed-sql build/sqltext SQL_STATE sql/state.sql

$(OBJDIR)/sqltext.o: build/sqltext.c | $(OBJDIR)
	$(CC) $(CFLAGS) -c -o $@ $<

# How bin/ was last linked ("plain" or "sanitize"); rewritten only when that changes.
build/mode: FORCE | build
	@echo '$(BUILD_MODE)' | cmp -s - $@ || echo '$(BUILD_MODE)' > $@

FORCE:

$(sort bin build $(OBJDIR) build/fuzz):
	mkdir -p $@

# With SANITIZE=1 a report from ASan, UBSan or LeakSanitizer (on: what exit() leaves
# reachable is not reported) makes the binary fail with it on stderr, which the tests
# check (exit code, messages), so it fails the suite.
ifeq ($(SANITIZE),1)
CHECK_ENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
endif

# The three tiers of tests (README, "Tests in three tiers"); each installs missing packages (as
# root) and builds. t44's applications need psycopg, node and npm (install-deps drivers) and
# node-postgres from npm (install-node-pg, into build/node); t45 needs firebase-tools and
# firebase-admin from npm (install-firebase, into build/node). When npm fails the other tests
# still run, and t44 and t45 (which run their install scripts themselves) fail.
# make unit: the C unit tests and the layer check, no server (seconds).
# make check-fast: every test file at reduced sizes (tests/run --fast), each against a cluster of
# its own, one more file at a time than there are cores (the files often wait on locks and sleeps).
# make check: every file at full size, as CI runs it, as many at a time as there are cores.
# TEST_JOBS=N sets how many files run at once for both.
NPROC := $(shell nproc 2>/dev/null || echo 1)

unit:
	scripts/install-deps
	$(MAKE) $(OBJDIR)/unit-tests
	$(CHECK_ENV) tests/run --no-server t01_units t02_layers

check-fast:
	scripts/install-deps drivers
	-scripts/install-node-pg
	-scripts/install-firebase
	$(MAKE) all $(OBJDIR)/unit-tests
	$(CHECK_ENV) tests/run --fast -j $(or $(TEST_JOBS),$(shell echo $$(($(NPROC) + 1))))

check:
	scripts/install-deps drivers
	-scripts/install-node-pg
	-scripts/install-firebase
	$(MAKE) all $(OBJDIR)/unit-tests
	$(CHECK_ENV) tests/run -j $(or $(TEST_JOBS),$(NPROC))

# make fuzz: the libFuzzer targets of tests/fuzz, built with clang, ASan and
# UBSan into build/fuzz, each run FUZZ_SECONDS on a copy of its corpus; any
# crash, leak or broken invariant fails (the input is kept in build/fuzz/findings).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := export csv_header plan
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers \
                -Icommon -Ibuild -Itests/fuzz $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
                $(SAN_FLAGS) -fsanitize=fuzzer-no-link
FUZZ_OBJ     := $(COMMON_SRC:%.c=build/fuzz/%.o) build/fuzz/sqltext.o
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

build/fuzz/common/%.o: common/%.c $(COMMON_HDR) build/sqltext.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

build/fuzz/sqltext.o: build/sqltext.c | build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

build/fuzz/fuzz_%.o: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(COMMON_HDR) | build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

# an archive, so that each target links only the objects it calls into
build/fuzz/libphasemig.a: $(FUZZ_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): build/fuzz/fuzz_%: build/fuzz/fuzz_%.o build/fuzz/fuzz_util.o build/fuzz/libphasemig.a
	$(FUZZ_CC) $(SAN_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz:
	scripts/install-deps fuzz
	$(MAKE) $(FUZZ_BINS)
	tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

demo:
	scripts/install-deps
	$(MAKE) all
	KEEP="$(KEEP)" scripts/demo

# Both jobs against their baselines: scripts/bench [USERS] [RUNS] (default 1M users, 3 runs: long)
bench:
	scripts/install-deps bench
	$(MAKE) all
	scripts/bench $(BENCH_USERS) $(BENCH_RUNS)

lint: all
	scripts/check-layers
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	  --suppress=missingIncludeSystem --suppress=readdirCalled --library=posix --include=/usr/include/jansson.h \
	  -Icommon -Ibuild -Itests/fuzz -Iscripts/lib common phases tests/fuzz tests/unit scripts/lib

# make format: .clang-format over every C file (a no-op on a tree that follows it)
format:
	clang-format -i $(COMMON_SRC) $(COMMON_HDR) phases/*.c phases/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h \
	  scripts/lib/*.c scripts/lib/*.h

# make install [PREFIX=/usr/local] [DESTDIR=...]: the three binaries, their man pages
# (written from --help by help2man), the shipped plans and the docs, as a PostgreSQL
# client installs; make uninstall removes exactly those files.
PREFIX  ?= /usr/local
BINDIR  := $(DESTDIR)$(PREFIX)/bin
MANDIR  := $(DESTDIR)$(PREFIX)/share/man/man1
DATADIR := $(DESTDIR)$(PREFIX)/share/phasemig
DOCDIR  := $(DESTDIR)$(PREFIX)/share/doc/phasemig
PHASES  := phase1 phase2 phase3
MANS    := $(PHASES:%=build/man/%.1)
PLANS   := $(wildcard plans/*.json)
DOCS    := README.md $(wildcard docs/*.md)

man: $(MANS)

build/man/phase%.1: bin/phase% | build
	@mkdir -p $(@D)
	help2man --no-info --section=1 --source=phasemig \
	  --name="$$(bin/phase$* --help | head -n 1 | sed 's/^phase$* //; s/\.$$//')" --output=$@.tmp bin/phase$*
	@# help2man knows no "Exit status:" section: make that subsection the page's EXIT STATUS
	sed 's/^\.SS "Exit status:"$$/.SH "EXIT STATUS"/' $@.tmp >$@ && rm -f $@.tmp

install: all man
	install -d $(BINDIR) $(MANDIR) $(DATADIR)/plans $(DOCDIR)
	install -m 755 $(PHASES:%=bin/%) $(BINDIR)
	install -m 644 $(MANS) $(MANDIR)
	install -m 644 $(PLANS) $(DATADIR)/plans
	install -m 644 $(DOCS) $(DOCDIR)

uninstall:
	rm -f $(PHASES:%=$(BINDIR)/%) $(PHASES:%=$(MANDIR)/%.1)
	rm -f $(addprefix $(DATADIR)/plans/,$(notdir $(PLANS))) $(addprefix $(DOCDIR)/,$(notdir $(DOCS)))
	-rmdir $(DATADIR)/plans $(DATADIR) $(DOCDIR) 2>/dev/null

clean:
	rm -rf bin build
