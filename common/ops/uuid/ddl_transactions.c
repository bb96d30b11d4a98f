/*
 * ddl_transactions.c: what convert_to_uuid's transactions of DDL are built
 * from: a list of statements run as one transaction, the LOCK that opens each
 * transaction altering several tables, and the foreign keys dropped and added
 * back NOT VALID (tables.c validates them afterwards).
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

void
uuid_stmts_add(UuidStmts *st, char *sql)
{
	st->s = xrealloc(st->s, (size_t) (st->n + 1) * sizeof(char *));
	st->s[st->n++] = sql;
}

int
uuid_stmts_run(Run *run, const char *what, UuidStmts *st)
{
	int rc = ops_ddl(run, what, (const char *const *) st->s, st->n);

	for (int i = 0; i < st->n; i++)
		free(st->s[i]);
	free(st->s);
	st->s = NULL;
	st->n = 0;
	return rc;
}

/*
 * Every table the job alters, once each, the plan's table first, then VIEWS
 * (a JSON array of {name}, or NULL), comma separated; *count says how many.
 */
static char *
lock_list(const UuidJob *job, json_t *views, int *count)
{
	StrBuf list;
	size_t i;
	json_t *v;

	sb_init(&list);
	*count = 0;
	for (int t = 0; t < job->n; t++)
	{
		bool seen = false;

		for (int u = 0; u < t && !seen; u++)
			seen = strcmp(job->t[u].table, job->t[t].table) == 0;
		if (!seen)
			sb_printf(&list, "%s%s", (*count)++ ? ", " : "", job->t[t].table);
	}
	json_array_foreach(views, i, v)
	{
		sb_printf(&list, ", %s", json_string_value(json_object_get(v, "name")));
		(*count)++;
	}
	return sb_steal(&list);
}

/*
 * The swap's first statement: every table it alters, in one LOCK TABLE, the
 * plan's table first and the views last.  Taking them all before any ALTER
 * means the transaction waits (under lock_timeout) only here, holding nothing
 * it has changed; and the key table before its children is the order in which
 * the application locks them when it inserts a user and then its rows.  Were
 * the ALTERs left to lock table by table, the first DROP CONSTRAINT would hold
 * a child while waiting for the users table, and an application transaction
 * holding users and then writing to that child would deadlock with it.
 *
 * No order avoids every deadlock, though: an application transaction that
 * wrote a child and then queues behind the swap's request for users is
 * waiting on the swap, which once it has users waits on that child.  The
 * server aborts whichever of the two runs its deadlock check first, and the
 * application, waiting longer, would be the one.  So the LOCK as a whole
 * waits less than deadlock_timeout (each table its share): an application
 * transaction queued behind it checks only after the swap has its locks or
 * has given up, and the swap retries, never the application.
 */
void
uuid_add_lock_tables(UuidStmts *st, const UuidJob *job, json_t *views)
{
	int tables;
	char *list = lock_list(job, views, &tables);
	uuid_stmts_add(st, str_printf("SET LOCAL lock_timeout = %lld", ops_lock_share_ms(job->run, tables)));
	uuid_stmts_add(st, str_printf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", list));
	free(list);
}

void
uuid_add_foreign_keys(UuidStmts *st, const UuidJob *job, bool drop)
{
	for (int i = 1; i < job->n; i++)
	{
		const UuidTarget *t = &job->t[i];

		/* an also_convert column: none, or one the swap adds and the swap back (job swapped) drops */
		if (t->constraint == NULL || (!drop && t->fk_added && job->swapped))
			continue;
		if (drop)
			uuid_stmts_add(st, str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", t->table, t->q_constraint));
		else
			uuid_stmts_add(
				st, str_printf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", t->table, t->q_constraint, t->fk_def));
	}
}
