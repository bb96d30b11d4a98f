/*
 * service_file.c: bin/service-file, scripts/rehearse's helper.  It reads a
 * connection string (URI, key=value pairs or a bare database name) from the
 * environment variable PHASEMIG_CONNINFO and prints it as a section NAME of a
 * libpq service file, so that psql, pg_dump and pgbench get "service=NAME"
 * on their command line and the details, password included, stay in a 0600
 * file.  Nothing of the string is ever printed to stderr.
 *
 * Usage: PHASEMIG_CONNINFO=... service-file NAME >> FILE
 * Exit 0; 3, silently, when the string names a service itself (services do
 * not nest: the caller uses that string as it is); or 2 with a message: the
 * string does not parse, or holds a value a service file cannot carry (a
 * line break, blanks at either end).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/conninfo_secrets.h"

static int
refuse(const char *why)
{
	fprintf(stderr, "service-file: %s\n", why);
	return 2;
}

/* A value the service file reader gives back as it is: no line break, no blank at either end. */
static int
storable(const char *v)
{
	size_t len = strlen(v);

	return strpbrk(v, "\r\n") == NULL
		&& (len == 0 || (!isspace((unsigned char) v[0]) && !isspace((unsigned char) v[len - 1])));
}

int
main(int argc, char **argv)
{
	const char *conninfo = getenv("PHASEMIG_CONNINFO");
	PQconninfoOption *opts;
	char *err = NULL;
	int rc = 0;

	if (argc != 2 || conninfo == NULL)
		return refuse("usage: PHASEMIG_CONNINFO=... service-file NAME");
	if (!is_connection_string(conninfo))
	{
		if (!storable(conninfo))
			return refuse("the database name has a line break or blanks at an end");
		printf("[%s]\ndbname=%s\n", argv[1], conninfo);
		return 0;
	}
	/* libpq's parse error may quote the string, password and all: not shown */
	if ((opts = PQconninfoParse(conninfo, &err)) == NULL)
	{
		PQfreemem(err);
		return refuse("the connection string cannot be parsed");
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "service") == 0)
			rc = 3;
		else if (o->val && !storable(o->val) && rc == 0)
			rc = refuse("a value of the connection string has a line break or blanks at an end");
	if (rc == 0)
	{
		printf("[%s]\n", argv[1]);
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val)
				printf("%s=%s\n", o->keyword, o->val);
	}
	PQconninfoFree(opts);
	return rc;
}
