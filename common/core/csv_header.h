/*
 * csv_header.h: the check that a CSV file starts with the header phasemig
 * expects (what COPY's HEADER MATCH does, which PostgreSQL 14 lacks).
 */
#ifndef PHASEMIG_CSV_HEADER_H
#define PHASEMIG_CSV_HEADER_H

#include <stdbool.h>
#include <stdio.h>

/*
 * True when the first line of FP names exactly the columns EXPECTED
 * ("a,b,c"), each maybe quoted, after a UTF-8 byte order mark, ending in LF
 * or CRLF; logs the header found otherwise, naming PATH and WHAT the file
 * should be.  FP is left after the line.
 */
bool csv_header_is(FILE *fp, const char *expected, const char *what, const char *path);

#endif
