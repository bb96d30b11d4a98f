/*
 * clerk_json.c: reads Clerk's JSON export (an array of user objects, as its
 * API's GET /v1/users and its CLI give them) into pg_temp.phasemig_clerk, the
 * table the dashboard CSV fills, one user at a time (core/jstream.c), each
 * made a row by clerk_user.c, with the plan's custom claims (claims.c).
 */
#include <stdlib.h>

#include "core/copyin.h"
#include "core/db.h"
#include "core/jstream.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"
#include "ops/backfill/providers/clerk_firebase/clerk_user.h"

int
clerk_json_load(PGconn *conn, const char *path, const ClaimMap *claims, int n, long long *loaded)
{
	JStream js;
	CopyIn ci;
	StrBuf row;
	json_t *elem;
	int rc = 0;
	long other_providers = 0;
	const char *failure = NULL;

	db_exec(conn, CLERK_TABLE);
	db_exec(conn, "TRUNCATE pg_temp.phasemig_clerk");
	if (!jstream_open(&js, path, NULL))
	{
		log_error("Clerk export \"%s\" is not a JSON array of users: %s", path, js.error);
		jstream_close(&js);
		return EXIT_BAD_INPUT;
	}
	if (!copyin_begin(&ci, conn, "COPY pg_temp.phasemig_clerk (" CLERK_JSON_COLUMNS ") FROM STDIN"))
	{
		jstream_close(&js);
		return EXIT_FAILED;
	}
	/* 1. each user a row, the bad one named */
	sb_init(&row);
	while (!stop_requested() && (rc = jstream_next(&js, &elem)) == 1)
	{
		bool ok;

		sb_reset(&row);
		if (!json_is_object(elem))
		{
			log_error("Clerk export \"%s\": element %ld is not a user object", path, js.element);
			ok = false;
		}
		else
			ok = clerk_user_row(&row, elem, js.element, path, claims, n, &other_providers)
				&& copyin_row(&ci, row.data, row.len);
		json_decref(elem);
		if (!ok)
		{
			failure = "bad element";
			break;
		}
	}
	sb_free(&row);
	/* 2. how the stream ended */
	if (stop_requested())
		failure = "stopped";
	else if (failure == NULL && rc < 0)
	{
		log_error("Clerk export \"%s\" is malformed: %s", path, js.error);
		failure = "malformed input";
	}
	jstream_close(&js);
	if (!copyin_finish(&ci, failure))
	{
		if (failure)
			return PQstatus(conn) == CONNECTION_OK && !stop_requested() ? EXIT_BAD_INPUT : EXIT_FAILED;
		log_error("could not load the Clerk export \"%s\": %s", path, ci.error);
		return EXIT_FAILED;
	}
	/* 3. a sign-in Firebase cannot import is said, not silently dropped */
	if (other_providers > 0)
		log_warning("%ld social accounts of the Clerk export are of providers Firebase does not import (or have no "
					"provider_user_id): those users sign in to Firebase by their other methods only",
					other_providers);
	*loaded = ci.rows;
	return EXIT_DONE;
}
