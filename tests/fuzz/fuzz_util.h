/*
 * fuzz_util.h: what the libFuzzer targets in tests/fuzz share: the entry
 * points' prototypes, their start-up (LLVMFuzzerInitialize, in fuzz_util.c:
 * quiet logs named after the program, so a target defines only
 * LLVMFuzzerTestOneInput), and the input as a file for the readers that take
 * a path.
 */
#ifndef PHASEMIG_FUZZ_UTIL_H
#define PHASEMIG_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Name the program NAME in messages and silence them (they are formatted all
 * the same); LLVMFuzzerInitialize does it with the program's file name.
 */
void fuzz_quiet_logs(const char *name);

/*
 * Write DATA to this process's input file (made once with mkstemp and
 * unlinked at once) and return a path that opens it.  Aborts when the file
 * cannot be written.
 */
const char *fuzz_input_file(const uint8_t *data, size_t size);

/* Stop the run as a finding: WHAT broke an invariant the target checks. */
_Noreturn void fuzz_fail(const char *what);

#endif
