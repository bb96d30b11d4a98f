# Makefile: builds bin/phase1, bin/phase2, bin/phase3 (C11, -Werror) against
# libpq, jansson and libuuid found through pkg-config; runs the tests and the demo.
CC      ?= cc
PKGS    := libpq jansson uuid
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers \
           -Icommon -Ibuild $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lpq -ljansson -luuid)

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:common/%.c=build/%.o) build/sqltext.o
BINS       := bin/phase1 bin/phase2 bin/phase3 bin/service-file

.PHONY: all check demo bench clean lint format
.SECONDARY:
all: $(BINS)

bin/phase%: build/phase%.o $(COMMON_OBJ) | bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# scripts/rehearse's helper: a connection string as a section of a libpq service file
bin/service-file: build/service_file.o build/conninfo_secrets.o build/strbuf.o | bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

build/service_file.o: scripts/lib/service_file.c common/conninfo_secrets.h | build
	$(CC) $(CFLAGS) -c -o $@ $<

build/%.o: common/%.c common/*.h build/sqltext.h | build
	$(CC) $(CFLAGS) -c -o $@ $<

build/phase%.o: phases/phase%.c common/*.h | build
	$(CC) $(CFLAGS) -c -o $@ $<

# sql/state.sql compiled in, so the binaries need no files beside them
build/sqltext.c build/sqltext.h: sql/state.sql scripts/embed-sql | build
	scripts/embed-sql build/sqltext SQL_STATE sql/state.sql

build/sqltext.o: build/sqltext.c
	$(CC) $(CFLAGS) -c -o $@ $<

bin build:
	mkdir -p $@

# The README's test command: installs missing packages (as root), builds, tests.
check:
	scripts/install-deps
	$(MAKE) all
	tests/run

demo:
	scripts/install-deps
	$(MAKE) all
	scripts/demo

# Both jobs against their baselines: scripts/bench [USERS] [RUNS] (default 1M users, 3 runs: long)
bench: all
	scripts/bench $(BENCH_USERS) $(BENCH_RUNS)

lint: all
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	  --suppress=missingIncludeSystem --suppress=readdirCalled --library=posix --include=/usr/include/jansson.h \
	  -Icommon -Ibuild common phases

format:
	clang-format -i common/*.c common/*.h phases/*.c

clean:
	rm -rf bin build
