/*
 * input_file.h: a file phasemig reads whole (a plan, a mapping, another
 * export an option names) must be a regular file no larger than a stated limit, checked
 * before it is opened: a device, a FIFO or a file without end would keep a
 * run reading for ever.
 */
#ifndef PHASEMIG_INPUT_FILE_H
#define PHASEMIG_INPUT_FILE_H

#include <stdbool.h>

/* The default limit of a mapping or another export, and the environment variable that changes it. */
#define INPUT_FILE_DEFAULT_LIMIT (4LL << 30)
#define INPUT_FILE_LIMIT_ENV "PHASEMIG_MAX_INPUT_SIZE"
/* A plan's limit: plans are a few kB. */
#define INPUT_FILE_PLAN_LIMIT (1LL << 20)

/*
 * The limit of a mapping or another export in bytes: PHASEMIG_MAX_INPUT_SIZE
 * (a number of bytes, or with a K, M or G suffix, powers of 1024), else
 * INPUT_FILE_DEFAULT_LIMIT.  -1, logged, when the variable is not a size.
 */
long long input_file_limit(void);
/*
 * True when PATH (a KIND: "mapping file") is a regular file of at most LIMIT
 * bytes; otherwise logs why and returns false.  A file that cannot be
 * examined passes: opening it gives the error.
 */
bool input_file_check(const char *path, const char *kind, long long limit);

#endif
