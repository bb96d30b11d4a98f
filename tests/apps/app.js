#!/usr/bin/env node
// tests/apps/app.js -- an application written with node-postgres (`pg` from npm, installed under
// build/node by scripts/install-node-pg; NODE_PATH names its node_modules) that t44_drivers.sh
// runs against the database while phasemig runs its steps. tests/apps/app.py is the same
// application written with psycopg 3; tests/apps/README.md says what both do.
//
//     app.js --job uuid|clerk --version old|new --name NAME --search-path PATH
//            --control DIR --out FILE [--pause-ms N] [--keep-users N]
//
// One connection for the whole run (the connection parameters come from the PG* variables).
// Every statement is a named prepared statement (node-postgres prepares it on the connection the
// first time and keeps it), its parameters sent untyped as node-postgres does: the key as a
// string for both versions. Besides, at connect, an SQL-level PREPARE with a typed parameter
// (text for the old version, uuid for the new version of the uuid job), run by EXECUTE in every
// iteration: what an ORM that types its parameters sends. In a loop until DIR/stop-<version>
// exists: inserts, updates, deletes and reads, checking each result against what it wrote.
// Every statement is counted, and every failure by SQLSTATE (a result that differs from what the
// application wrote counts as "mismatch:<statement>"), per step (the text of DIR/step when the
// iteration began). A failure never stops the loop: the transaction is rolled back and the loop
// goes on. At the end the counts and the rows it believes are in the database go to FILE as one
// JSON line.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const pg = require('pg');

function parseArgs(argv) {
  const a = { pauseMs: 10, keepUsers: 30 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (v === undefined) throw new Error(`missing value for ${k}`);
    switch (k) {
      case '--job': a.job = v; break;
      case '--version': a.version = v; break;
      case '--name': a.name = v; break;
      case '--search-path': a.searchPath = v; break;
      case '--control': a.control = v; break;
      case '--out': a.out = v; break;
      case '--pause-ms': a.pauseMs = Number(v); break;
      case '--keep-users': a.keepUsers = Number(v); break;
      default: throw new Error(`unknown option ${k}`);
    }
  }
  for (const k of ['job', 'version', 'name', 'searchPath', 'control', 'out'])
    if (a[k] === undefined) throw new Error(`--${k} is required`);
  if (!['uuid', 'clerk'].includes(a.job) || !['old', 'new'].includes(a.version)) throw new Error('bad --job or --version');
  return a;
}

const args = parseArgs(process.argv.slice(2));
const JOB = args.job, VERSION = args.version, NAME = args.name;
const OTHER = VERSION === 'old' ? 'new' : 'old';
const IDENT = JOB === 'clerk' ? (VERSION === 'old' ? 'clerkUserId' : 'firebaseUid') : null;
// the type of the SQL-level PREPARE's key parameter
const KEY_TYPE = JOB === 'uuid' && VERSION === 'new' ? 'uuid' : 'text';

let stopRequested = false;
process.on('SIGTERM', () => { stopRequested = true; });
process.on('SIGINT', () => { stopRequested = true; });

const control = (f) => path.join(args.control, f);
function readStep() {
  try { return fs.readFileSync(control('step'), 'utf8').trim() || '?'; } catch (e) { return '?'; }
}
const log = (m) => process.stderr.write(`${NAME}: ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Mismatch extends Error {
  constructor(what, detail) { super(`${what}: ${detail}`); this.what = what; }
}

// ---------- counting ----------
const steps = new Map();   // step -> {statements, failed, failures}
const totals = { statements: 0, failed: 0, failures: {}, reconnects: 0 };
let step = readStep();
let logged = 0;
function stepCounts() {
  if (!steps.has(step)) steps.set(step, { statements: 0, failed: 0, failures: {} });
  return steps.get(step);
}
function countStatement() { stepCounts().statements++; totals.statements++; }
function countFailure(code, what, detail) {
  const s = stepCounts();
  s.failed++; s.failures[code] = (s.failures[code] || 0) + 1;
  totals.failed++; totals.failures[code] = (totals.failures[code] || 0) + 1;
  if (logged++ < 20) log(`FAILED [${step}] ${what}: ${code}: ${detail}`);
}

// ---------- the connection ----------
let client = null;
let broken = false;
async function connect() {
  const c = new pg.Client({ application_name: NAME, options: `-c search_path=${args.searchPath}` });
  c.on('error', (e) => { broken = true; log(`connection error: ${e.message}`); });
  await c.connect();
  broken = false;
  client = c;
  // the typed parameter: PREPARE ... (text) for the old version, (uuid) for the new one of the uuid job
  await q(`PREPARE t44_user_by_key(${KEY_TYPE}) AS SELECT "id", "name" FROM "User" WHERE "id" = $1`, [], null, false);
}

const names = new Map();   // statement text -> its prepared statement's name
async function q(text, values = [], expect = null, prepare = true) {
  countStatement();
  const query = { text, values };
  if (prepare) {
    if (!names.has(text)) names.set(text, `t44_${crypto.createHash('md5').update(text).digest('hex').slice(0, 16)}`);
    query.name = names.get(text);
  }
  const r = await client.query(query);
  if (expect !== null && r.rows.length !== expect)
    throw new Mismatch(`${text.split(' ')[0].toLowerCase()} rows`, `expected ${expect} rows, got ${r.rows.length}: ${text}`);
  return r.rows;
}
const begin = () => q('BEGIN', [], null, false);
const commit = () => q('COMMIT', [], null, false);

// ---------- the model: the rows this application wrote and believes are there ----------
const users = [];   // {id, ident, name, email, posts: {id: [slug, title]}, sessions: [id]}
let nIter = 0, nPost = 0;
const nextPostId = () => `${NAME}-post-${++nPost}`;
const newKey = () => crypto.randomUUID();
// the Clerk job's identities: an old version's users are in the mapping (their Clerk id maps to
// fb_<NAME>_<i>); half the new version's users are (their uid maps to user_<NAME>_<i>), the other
// half exist in Firebase only
function poolIdent(i) {
  if (VERSION === 'old') return `user_${NAME}_${i % 1000}`;
  return i % 2 === 0 ? `fb_${NAME}_${i % 1000}` : `fbonly_${NAME}_${i}`;
}
const pick = (a) => a[Math.floor(Math.random() * a.length)];
let seeds = [];

async function loadSeeds() {
  seeds = (await q('SELECT "id" FROM "User" WHERE "email" LIKE $1 ORDER BY "email"', ['seed-%'])).map((r) => r.id);
}

async function insertUser() {
  const k = newKey();
  const email = `t44-${NAME}-${nIter}@t44.test`, name = `${NAME} ${nIter}`;
  const ident = IDENT ? poolIdent(nIter) : null;
  const u = { id: k, ident, name, email, posts: {}, sessions: [] };
  await begin();
  let r;
  if (IDENT) {
    r = await q(`INSERT INTO "User" ("id", "${IDENT}", "email", "name", "updatedAt") VALUES ($1, $2, $3, $4, now()) ` +
                `RETURNING "id", "${IDENT}" AS ident`, [k, ident, email, name], 1);
    if (r[0].id !== k || r[0].ident !== ident) throw new Mismatch('insert user returning', JSON.stringify(r[0]));
  } else {
    r = await q('INSERT INTO "User" ("id", "email", "name", "updatedAt") VALUES ($1, $2, $3, now()) RETURNING "id", "createdAt"',
                [k, email, name], 1);
    if (r[0].id !== k) throw new Mismatch('insert user returning', `${r[0].id} for ${k}`);
  }
  for (const slug of ['p1', 'p2']) {
    const pid = nextPostId(), title = `${slug} of ${name}`;
    r = await q('INSERT INTO "Post" ("id", "userId", "slug", "title") VALUES ($1, $2, $3, $4) RETURNING "id", "userId"',
                [pid, k, slug, title], 1);
    if (r[0].userId !== k) throw new Mismatch('insert post returning', `${r[0].userId} for ${k}`);
    u.posts[pid] = [slug, title];
  }
  const sid = `${NAME}-session-${nIter}`;
  await q(`INSERT INTO "Session" ("id", "userId", "token", "expiresAt") VALUES ($1, $2, $3, now() + interval '1 day') RETURNING "id"`,
          [sid, k, `tok-${sid}`], 1);
  u.sessions.push(sid);
  await commit();
  users.push(u);
}

async function readUser(u) {
  // a join through the foreign key, by key
  const r = await q('SELECT u."id", u."name", count(p."id")::int AS n FROM "User" u LEFT JOIN "Post" p ON p."userId" = u."id" ' +
                    'WHERE u."id" = $1 GROUP BY u."id", u."name"', [u.id], 1);
  if (r[0].id !== u.id || r[0].name !== u.name || r[0].n !== Object.keys(u.posts).length)
    throw new Mismatch('read user', `${JSON.stringify(r[0])} for ${u.id} ${u.name} ${Object.keys(u.posts).length} posts`);
}

async function iteration() {
  nIter++;
  // 1. a user with two posts and a session, in one transaction
  await guard(insertUser);
  if (users.length === 0) return;
  const u = pick(users);
  // 2. update by key, RETURNING
  await guard(async () => {
    const r = await q('UPDATE "User" SET "name" = $1, "updatedAt" = now() WHERE "id" = $2 RETURNING "name"',
                      [`${NAME} renamed ${nIter}`, u.id], 1);
    u.name = r[0].name;
  });
  // 3. read back through the join
  await guard(() => readUser(u));
  // 4. a child first, then its parent, in one transaction
  await guard(async () => {
    const pid = nextPostId(), slug = `s${nIter}`;
    await begin();
    await q('INSERT INTO "Post" ("id", "userId", "slug", "title") VALUES ($1, $2, $3, $4) RETURNING "id"', [pid, u.id, slug, 'later'], 1);
    await q('UPDATE "User" SET "updatedAt" = now() WHERE "id" = $1', [u.id]);
    await commit();
    u.posts[pid] = [slug, 'later'];
  });
  // 5. an upsert of one of its posts (ON CONFLICT on the post's key), RETURNING
  await guard(async () => {
    const pid = pick(Object.keys(u.posts)), slug = u.posts[pid][0], title = `upserted ${nIter}`;
    const r = await q('INSERT INTO "Post" ("id", "userId", "slug", "title") VALUES ($1, $2, $3, $4) ' +
                      'ON CONFLICT ("id") DO UPDATE SET "title" = EXCLUDED."title" RETURNING "id", "userId", "title"',
                      [pid, u.id, slug, title], 1);
    if (r[0].userId !== u.id || r[0].title !== title) throw new Mismatch('upsert post', JSON.stringify(r[0]));
    u.posts[pid][1] = title;
  });
  // 6. an update through the composite unique index ("userId", "slug")
  await guard(async () => {
    const pid = pick(Object.keys(u.posts)), slug = u.posts[pid][0], title = `by slug ${nIter}`;
    const r = await q('UPDATE "Post" SET "title" = $1 WHERE "userId" = $2 AND "slug" = $3 RETURNING "id"', [title, u.id, slug], 1);
    if (r[0].id !== pid) throw new Mismatch('update post by slug', `${r[0].id} for ${pid}`);
    u.posts[pid][1] = title;
  });
  // 7. a row both versions write: a seed user
  if (seeds.length)
    await guard(() => q('UPDATE "User" SET "name" = $1, "updatedAt" = now() WHERE "id" = $2', [`seed by ${NAME}`, pick(seeds)]));
  // 8. the other version's newest rows, through the join, then one of them by its key
  await guard(async () => {
    const r = await q('SELECT u."id", u."email", p."title" FROM "User" u JOIN "Post" p ON p."userId" = u."id" ' +
                      'WHERE u."email" LIKE $1 ORDER BY p."createdAt" DESC, p."id" LIMIT 5', [`t44-%-${OTHER}-%`]);
    if (r.length) await q('SELECT "id", "email" FROM "User" WHERE "id" = $1', [r[0].id]);
  });
  // 9. the typed parameter: EXECUTE of the SQL-level PREPARE made at connect
  await guard(async () => {
    const r = await q(`EXECUTE t44_user_by_key(${client.escapeLiteral(u.id)})`, [], 1, false);
    if (r[0].id !== u.id || r[0].name !== u.name) throw new Mismatch('execute user by key', `${JSON.stringify(r[0])} for ${u.id} ${u.name}`);
  });
  // 10. the Clerk job: the user found by its identity (the application's sign-in lookup)
  if (IDENT)
    await guard(async () => {
      const r = await q(`SELECT "id", "name" FROM "User" WHERE "${IDENT}" = $1`, [u.ident], 1);
      if (r[0].id !== u.id) throw new Mismatch('user by identity', `${JSON.stringify(r[0])} for ${u.id}`);
    });
  // 11. a child deleted by its key, RETURNING its reference
  if (u.sessions.length)
    await guard(async () => {
      const sid = u.sessions[u.sessions.length - 1];
      const r = await q('DELETE FROM "Session" WHERE "id" = $1 RETURNING "userId"', [sid], 1);
      if (r[0].userId !== u.id) throw new Mismatch('delete session returning', `${r[0].userId} for ${u.id}`);
      u.sessions.pop();
    });
  // 12. now and then a user's key changes: ON UPDATE CASCADE moves its children
  if (nIter % 7 === 0)
    await guard(async () => {
      const k2 = newKey();
      const r = await q('UPDATE "User" SET "id" = $1 WHERE "id" = $2 RETURNING "id"', [k2, u.id], 1);
      if (r[0].id !== k2) throw new Mismatch('change key returning', `${r[0].id} for ${k2}`);
      u.id = k2;
      const c = await q('SELECT count(*)::int AS n FROM "Post" WHERE "userId" = $1', [k2], 1);
      if (c[0].n !== Object.keys(u.posts).length) throw new Mismatch('posts after key change', `${c[0].n} for ${Object.keys(u.posts).length}`);
    });
  // 13. the oldest user deleted: ON DELETE CASCADE takes its children
  if (users.length > args.keepUsers)
    await guard(async () => {
      const old = users[0];
      await q('DELETE FROM "User" WHERE "id" = $1 RETURNING "id"', [old.id], 1);
      users.shift();
      const c = await q('SELECT count(*)::int AS n FROM "Post" WHERE "userId" = $1', [old.id], 1);
      if (c[0].n !== 0) throw new Mismatch('posts after delete', `${c[0].n} left`);
    });
}

const isSqlstate = (c) => typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c);
const connectionLost = (e) => broken || /^(08|57P0)/.test(e.code || '') || /ECONNRESET|EPIPE/.test(e.code || '') ||
  /Connection terminated|not queryable/.test(e.message || '');
// Runs fn; a failure is counted, its transaction rolled back, and the loop goes on.
async function guard(fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof Mismatch) countFailure(`mismatch:${e.what}`, e.what, e.message);
    else countFailure(isSqlstate(e.code) ? e.code : e.code || 'app-error', e.constructor.name, String(e.message).replace(/\n/g, ' | '));
    if (!(e instanceof Mismatch) && connectionLost(e)) {
      // the connection is gone: reconnect (counted: a failure and a reconnect)
      totals.reconnects++;
      try { await client.end(); } catch (e2) { /* gone */ }
      while (!stopRequested) {
        try { await connect(); break; } catch (e2) { countFailure('connection', 'reconnect', e2.message); await sleep(500); }
      }
      return;
    }
    try { await client.query('ROLLBACK'); } catch (e2) { /* not in a transaction, or gone */ }
  }
}

// An old version's long transaction on its views (a report): holds its locks while DIR/hold-<version> exists.
async function hold() {
  await guard(async () => {
    await begin();
    await q('SELECT count(*) FROM "User" u JOIN "Post" p ON p."userId" = u."id"');
    while (fs.existsSync(control(`hold-${VERSION}`)) && !stopRequested) await sleep(50);
    await commit();
  });
}

async function main() {
  await connect();
  let searchPath = null, prepared = [];
  await guard(async () => { searchPath = (await q('SHOW search_path', [], 1, false))[0].search_path; });
  await guard(loadSeeds);
  while (!stopRequested && !fs.existsSync(control(`stop-${VERSION}`))) {
    step = readStep();
    if (fs.existsSync(control(`hold-${VERSION}`))) { await hold(); continue; }
    await iteration();
    await sleep(args.pauseMs);
  }
  // the statements prepared on the server, with their parameters' types and when they were prepared
  await guard(async () => {
    prepared = (await q('SELECT name, parameter_types::text AS parameter_types, prepare_time, statement FROM pg_prepared_statements ' +
                        'ORDER BY prepare_time, name', [], null, false))
      .map((r) => ({ name: r.name, parameter_types: r.parameter_types, prepare_time: r.prepare_time.toISOString(), statement: r.statement }));
  });
  const model = {};
  for (const u of users) model[u.id] = { ident: u.ident, name: u.name, email: u.email, posts: u.posts, sessions: u.sessions };
  const result = {
    app: 'node-postgres', driver: `pg ${require('pg/package.json').version}`, job: JOB, version: VERSION, name: NAME,
    search_path: searchPath, iterations: nIter, ...totals, prepared, steps: [...steps.entries()].map(([s, c]) => ({ step: s, ...c })), users: model,
  };
  fs.writeFileSync(`${args.out}.tmp`, JSON.stringify(result) + '\n');
  fs.renameSync(`${args.out}.tmp`, args.out);
  await client.end();
}

main().catch((e) => { log(`fatal: ${e.stack || e}`); process.exit(1); });
