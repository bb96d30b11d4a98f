/*
 * base64.h: standard base64 (RFC 4648, with padding), as Firebase's
 * auth:import reads a password hash.  Pure: no connection, no logging.
 */
#ifndef PHASEMIG_BASE64_H
#define PHASEMIG_BASE64_H

#include <stddef.h>

/* The base64 text of LEN bytes at IN, in a fresh malloc'd string. */
char *base64_encode(const unsigned char *in, size_t len);

#endif
