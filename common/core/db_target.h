/*
 * db_target.h: which database a connection reached, said the same way in
 * every output (the start line, the confirmation, status, hook events): the
 * host or socket directory, the port, the database and the user; never a
 * password or any other secret of the connection string.
 */
#ifndef PHASEMIG_DB_TARGET_H
#define PHASEMIG_DB_TARGET_H

#include <jansson.h>
#include <libpq-fe.h>

/*
 * 'database "app" on host db1 port 5432 as user "alice"' (or "on socket
 * /run/postgresql"), from PQdb, PQhost, PQport and PQuser; malloc'd, the
 * caller frees it.  "no database" for a NULL connection.
 */
char *db_target_describe(const PGconn *conn);
/*
 * The same as a new JSON object {"host", "port", "name", "user"}; JSON null
 * for a NULL connection.  The caller owns the reference.
 */
json_t *db_target_json(const PGconn *conn);

#endif
