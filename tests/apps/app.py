#!/usr/bin/env python3
"""tests/apps/app.py -- an application written with psycopg 3 (Debian's python3-psycopg) that
t44_drivers.sh runs against the database while phasemig runs its steps. tests/apps/app.js is the
same application written with node-postgres; tests/apps/README.md says what both do.

    app.py --job uuid|clerk --version old|new --name NAME --search-path PATH
           --control DIR --out FILE [--pause-ms N] [--keep-users N]

One connection for the whole run (the connection parameters come from the PG* variables), every
statement prepared on the server (prepare=True) and kept there. The old version binds every key
as a typed text parameter (psycopg's binary placeholder %b sends a str as text, oid 25: what an
ORM that binds strings sends); the new version of the uuid job binds uuid.UUID (typed uuid).
In a loop until DIR/stop-<version> exists: inserts, updates, deletes and reads, checking each
result against what it wrote. Every statement is counted, and every failure by SQLSTATE (a
result that differs from what the application wrote counts as a failure too, under
"mismatch:<statement>"), per step (the text of DIR/step when the iteration began). A failure
never stops the loop: the transaction is rolled back and the loop goes on. At the end the
counts and the rows it believes are in the database go to FILE as one JSON line.
"""
import argparse
import json
import os
import random
import signal
import sys
import time
import uuid

import psycopg

ap = argparse.ArgumentParser()
ap.add_argument("--job", choices=["uuid", "clerk"], required=True)
ap.add_argument("--version", choices=["old", "new"], required=True)
ap.add_argument("--name", required=True)
ap.add_argument("--search-path", required=True)
ap.add_argument("--control", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--pause-ms", type=int, default=10)
ap.add_argument("--keep-users", type=int, default=30)
args = ap.parse_args()

JOB, VERSION, NAME = args.job, args.version, args.name
OTHER = "new" if VERSION == "old" else "old"
# the key's parameters: typed text (old), typed uuid (new version of the uuid job), else typed text
TYPED_UUID = JOB == "uuid" and VERSION == "new"
K = "%s" if TYPED_UUID else "%b"
# the user's identity column in the Clerk job: the Clerk id (old), the Firebase uid (new)
IDENT = {"old": "clerkUserId", "new": "firebaseUid"}[VERSION] if JOB == "clerk" else None

stop_requested = False


def on_signal(signum, frame):
    global stop_requested
    stop_requested = True


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def control(name):
    return os.path.join(args.control, name)


def read_step():
    try:
        with open(control("step")) as f:
            return f.read().strip() or "?"
    except OSError:
        return "?"


def log(msg):
    print(f"{NAME}: {msg}", file=sys.stderr, flush=True)


def new_key():
    u = uuid.uuid4()
    return u if TYPED_UUID else str(u)


def key_text(k):
    return str(k)


class Mismatch(Exception):
    def __init__(self, what, detail):
        super().__init__(f"{what}: {detail}")
        self.what = what


# ---------- counting ----------
steps = {}  # step -> {"statements": n, "failed": n, "failures": {code: n}}
order = []
totals = {"statements": 0, "failed": 0, "failures": {}, "reconnects": 0}
step = read_step()
logged = 0


def step_counts():
    if step not in steps:
        steps[step] = {"statements": 0, "failed": 0, "failures": {}}
        order.append(step)
    return steps[step]


def count_statement():
    step_counts()["statements"] += 1
    totals["statements"] += 1


def count_failure(code, what, detail):
    global logged
    s = step_counts()
    s["failed"] += 1
    s["failures"][code] = s["failures"].get(code, 0) + 1
    totals["failed"] += 1
    totals["failures"][code] = totals["failures"].get(code, 0) + 1
    if logged < 20:
        logged += 1
        log(f"FAILED [{step}] {what}: {code}: {detail}")


# ---------- the connection ----------
def connect():
    return psycopg.connect(
        "", application_name=NAME, options=f"-c search_path={args.search_path}", autocommit=True
    )


conn = connect()


def q(sql, params=(), expect=None, prepare=True):
    """One statement, prepared on the server; returns its rows. expect: the row count it must have."""
    count_statement()
    cur = conn.execute(sql, params, prepare=prepare)
    rows = cur.fetchall() if cur.description else []
    if expect is not None and len(rows) != expect:
        raise Mismatch(sql.split()[0].lower() + " rows", f"expected {expect} rows, got {len(rows)}: {sql}")
    return rows


def begin():
    q("BEGIN", prepare=False)


def commit():
    q("COMMIT", prepare=False)


# ---------- the model: the rows this application wrote and believes are there ----------
users = []  # [{"id": key, "ident": str|None, "name": str, "email": str, "posts": {id: [slug, title]}, "sessions": [id]}]
n_iter = 0
n_post = 0


def next_post_id():
    global n_post
    n_post += 1
    return f"{NAME}-post-{n_post}"


def pool_ident(i):
    # the Clerk job's identities: an old version's users are in the mapping (their Clerk id maps
    # to fb_<NAME>_<i>); half the new version's users are (their uid maps to user_<NAME>_<i>),
    # the other half exist in Firebase only
    if VERSION == "old":
        return f"user_{NAME}_{i % 1000}"
    return f"fb_{NAME}_{i % 1000}" if i % 2 == 0 else f"fbonly_{NAME}_{i}"


seeds = []


def load_seeds():
    global seeds
    seeds = [r[0] for r in q('SELECT "id" FROM "User" WHERE "email" LIKE %s ORDER BY "email"', ["seed-%"])]


def insert_user():
    global n_iter
    k = new_key()
    email = f"t44-{NAME}-{n_iter}@t44.test"
    name = f"{NAME} {n_iter}"
    ident = pool_ident(n_iter) if IDENT else None
    u = {"id": k, "ident": ident, "name": name, "email": email, "posts": {}, "sessions": []}
    begin()
    if IDENT:
        r = q(f'INSERT INTO "User" ("id", "{IDENT}", "email", "name", "updatedAt") VALUES ({K}, %b, %s, %s, now()) '
              f'RETURNING "id", "{IDENT}"', [k, ident, email, name], expect=1)
        if key_text(r[0][0]) != key_text(k) or r[0][1] != ident:
            raise Mismatch("insert user returning", f"{r[0]} for {k} {ident}")
    else:
        r = q(f'INSERT INTO "User" ("id", "email", "name", "updatedAt") VALUES ({K}, %s, %s, now()) '
              f'RETURNING "id", "createdAt"', [k, email, name], expect=1)
        if key_text(r[0][0]) != key_text(k):
            raise Mismatch("insert user returning", f"{r[0][0]} for {k}")
    for slug in ("p1", "p2"):
        pid = next_post_id()
        r = q(f'INSERT INTO "Post" ("id", "userId", "slug", "title") VALUES (%s, {K}, %s, %s) RETURNING "id", "userId"',
              [pid, k, slug, f"{slug} of {name}"], expect=1)
        if key_text(r[0][1]) != key_text(k):
            raise Mismatch("insert post returning", f"{r[0][1]} for {k}")
        u["posts"][pid] = [slug, f"{slug} of {name}"]
    sid = f"{NAME}-session-{n_iter}"
    q(f'INSERT INTO "Session" ("id", "userId", "token", "expiresAt") VALUES (%s, {K}, %s, now() + interval \'1 day\') '
      f'RETURNING "id"', [sid, k, f"tok-{sid}"], expect=1)
    u["sessions"].append(sid)
    commit()
    users.append(u)


def read_user(u):
    # a join through the foreign key, by key
    r = q(f'SELECT u."id", u."name", count(p."id")::int FROM "User" u LEFT JOIN "Post" p ON p."userId" = u."id" '
          f'WHERE u."id" = {K} GROUP BY u."id", u."name"', [u["id"]], expect=1)
    if key_text(r[0][0]) != key_text(u["id"]) or r[0][1] != u["name"] or r[0][2] != len(u["posts"]):
        raise Mismatch("read user", f"{r[0]} for {u['id']} {u['name']} {len(u['posts'])} posts")


def iteration():
    global n_iter
    n_iter += 1
    # 1. a user with two posts and a session, in one transaction
    step_guard(insert_user)
    if not users:
        return
    u = random.choice(users)
    # 2. update by key, RETURNING
    def upd():
        name = f"{NAME} renamed {n_iter}"
        r = q(f'UPDATE "User" SET "name" = %s, "updatedAt" = now() WHERE "id" = {K} RETURNING "name"', [name, u["id"]], expect=1)
        u["name"] = r[0][0]
    step_guard(upd)
    # 3. read back through the join
    step_guard(lambda: read_user(u))
    # 4. a child first, then its parent, in one transaction
    def child_then_parent():
        pid = next_post_id()
        slug = f"s{n_iter}"
        begin()
        q(f'INSERT INTO "Post" ("id", "userId", "slug", "title") VALUES (%s, {K}, %s, %s) RETURNING "id"',
          [pid, u["id"], slug, "later"], expect=1)
        q(f'UPDATE "User" SET "updatedAt" = now() WHERE "id" = {K}', [u["id"]])
        commit()
        u["posts"][pid] = [slug, "later"]
    step_guard(child_then_parent)
    # 5. an upsert of one of its posts (ON CONFLICT on the post's key), RETURNING
    def upsert():
        pid, (slug, _) = random.choice(list(u["posts"].items()))
        title = f"upserted {n_iter}"
        r = q(f'INSERT INTO "Post" ("id", "userId", "slug", "title") VALUES (%s, {K}, %s, %s) '
              f'ON CONFLICT ("id") DO UPDATE SET "title" = EXCLUDED."title" RETURNING "id", "userId", "title"',
              [pid, u["id"], slug, title], expect=1)
        if key_text(r[0][1]) != key_text(u["id"]) or r[0][2] != title:
            raise Mismatch("upsert post", f"{r[0]}")
        u["posts"][pid][1] = title
    step_guard(upsert)
    # 6. an update through the composite unique index ("userId", "slug")
    def upd_by_slug():
        pid, (slug, _) = random.choice(list(u["posts"].items()))
        title = f"by slug {n_iter}"
        r = q(f'UPDATE "Post" SET "title" = %s WHERE "userId" = {K} AND "slug" = %s RETURNING "id"',
              [title, u["id"], slug], expect=1)
        if r[0][0] != pid:
            raise Mismatch("update post by slug", f"{r[0][0]} for {pid}")
        u["posts"][pid][1] = title
    step_guard(upd_by_slug)
    # 7. a row both versions write: a seed user
    if seeds:
        step_guard(lambda: q(f'UPDATE "User" SET "name" = %s, "updatedAt" = now() WHERE "id" = {K}',
                             [f"seed by {NAME}", random.choice(seeds)]))
    # 8. the other version's newest rows, through the join, then one of them by its key
    def cross_read():
        r = q('SELECT u."id", u."email", p."title" FROM "User" u JOIN "Post" p ON p."userId" = u."id" '
              'WHERE u."email" LIKE %s ORDER BY p."createdAt" DESC, p."id" LIMIT 5', [f"t44-%-{OTHER}-%"])
        if r:
            q(f'SELECT "id", "email" FROM "User" WHERE "id" = {K}', [r[0][0]])
    step_guard(cross_read)
    # 9. the Clerk job: the user found by its identity (the application's sign-in lookup)
    if IDENT:
        def by_ident():
            r = q(f'SELECT "id", "name" FROM "User" WHERE "{IDENT}" = %b', [u["ident"]], expect=1)
            if key_text(r[0][0]) != key_text(u["id"]):
                raise Mismatch("user by identity", f"{r[0]} for {u['id']}")
        step_guard(by_ident)
    # 10. a child deleted by its key, RETURNING its reference
    if u["sessions"]:
        def del_session():
            sid = u["sessions"][-1]
            r = q('DELETE FROM "Session" WHERE "id" = %s RETURNING "userId"', [sid], expect=1)
            if key_text(r[0][0]) != key_text(u["id"]):
                raise Mismatch("delete session returning", f"{r[0][0]} for {u['id']}")
            u["sessions"].pop()
        step_guard(del_session)
    # 11. now and then a user's key changes: ON UPDATE CASCADE moves its children
    if n_iter % 7 == 0:
        def change_key():
            k2 = new_key()
            r = q(f'UPDATE "User" SET "id" = {K} WHERE "id" = {K} RETURNING "id"', [k2, u["id"]], expect=1)
            if key_text(r[0][0]) != key_text(k2):
                raise Mismatch("change key returning", f"{r[0][0]} for {k2}")
            u["id"] = k2
            r = q(f'SELECT count(*)::int FROM "Post" WHERE "userId" = {K}', [k2], expect=1)
            if r[0][0] != len(u["posts"]):
                raise Mismatch("posts after key change", f"{r[0][0]} for {len(u['posts'])}")
        step_guard(change_key)
    # 12. the oldest user deleted: ON DELETE CASCADE takes its children
    if len(users) > args.keep_users:
        def del_user():
            old = users[0]
            q(f'DELETE FROM "User" WHERE "id" = {K} RETURNING "id"', [old["id"]], expect=1)
            users.pop(0)
            r = q(f'SELECT count(*)::int FROM "Post" WHERE "userId" = {K}', [old["id"]], expect=1)
            if r[0][0] != 0:
                raise Mismatch("posts after delete", f"{r[0][0]} left")
        step_guard(del_user)


def step_guard(fn):
    """Runs fn; a failure is counted, its transaction rolled back, and the loop goes on."""
    global conn
    try:
        fn()
    except Mismatch as e:
        count_failure("mismatch:" + e.what, e.what, str(e))
        rollback_if_needed()
    except psycopg.Error as e:
        code = e.sqlstate or "connection"
        count_failure(code, type(e).__name__, str(e).strip().replace("\n", " | "))
        if conn.closed or conn.broken:
            # the connection is gone: reconnect (counted: a failure and a reconnect)
            totals["reconnects"] += 1
            while not stop_requested:
                try:
                    conn = connect()
                    break
                except psycopg.Error as e2:
                    count_failure("connection", "reconnect", str(e2).strip())
                    time.sleep(0.5)
        else:
            rollback_if_needed()
    except Exception as e:  # a bug of the application: counted, and the loop goes on
        count_failure("app-error", type(e).__name__, repr(e))
        rollback_if_needed()


def rollback_if_needed():
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass


def hold():
    """An old version's long transaction on its views (a report): holds its locks while DIR/hold exists."""
    def run():
        begin()
        q('SELECT count(*) FROM "User" u JOIN "Post" p ON p."userId" = u."id"')
        while os.path.exists(control(f"hold-{VERSION}")) and not stop_requested:
            time.sleep(0.05)
        commit()
    step_guard(run)


search_path = None


def show_search_path():
    global search_path
    search_path = q("SHOW search_path")[0][0]


step_guard(show_search_path)
step_guard(load_seeds)
while not stop_requested and not os.path.exists(control(f"stop-{VERSION}")):
    step = read_step()
    if os.path.exists(control(f"hold-{VERSION}")):
        hold()
        continue
    iteration()
    time.sleep(args.pause_ms / 1000)

# the statements prepared on the server, with their parameters' types and when they were prepared
prepared = []


def list_prepared():
    global prepared
    prepared = [{"name": r[0], "parameter_types": r[1], "prepare_time": r[2].isoformat(), "statement": r[3]}
                for r in q("SELECT name, parameter_types::text, prepare_time, statement FROM pg_prepared_statements "
                           "ORDER BY prepare_time, name", prepare=False)]


step_guard(list_prepared)
model = {
    key_text(u["id"]): {"ident": u["ident"], "name": u["name"], "email": u["email"],
                        "posts": u["posts"], "sessions": u["sessions"]}
    for u in users
}
result = {"app": "psycopg", "driver": f"psycopg {psycopg.__version__}", "job": JOB, "version": VERSION,
          "name": NAME, "search_path": search_path, "iterations": n_iter, **totals, "prepared": prepared, "steps": [{"step": s, **steps[s]} for s in order],
          "users": model}
with open(args.out + ".tmp", "w") as f:
    f.write(json.dumps(result) + "\n")
os.rename(args.out + ".tmp", args.out)
conn.close()
