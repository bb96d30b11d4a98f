// tests/apps/firebase/compare_accounts.js -- the oracle of the emulator test: compares the users of
// an import file (what phasemig wrote) with the accounts import_check.js read back from the
// emulator, field by field.
//
//   compare_accounts.js EXPECTED ACCOUNTS
//
// Both files are {"users": [...]} in the auth:import / auth:export JSON shape. Each expected user
// must be an account with the same localId, and no account may be left over. Compared: email,
// emailVerified and disabled (absent is false, as Firebase stores them), displayName, photoUrl,
// phoneNumber, customAttributes (as JSON values), passwordHash and salt (standard base64),
// createdAt and lastSignedInAt when the file sets them, and providerUserInfo: the file's entries
// against the account's, leaving out the two Firebase derives itself ("password" from an email
// with a hash, "phone" from phoneNumber). Prints one line per difference ("localId X: FIELD:
// expected ..., got ..."; a password hash or salt only "differs", never its value) and a last
// line with the counts. Exit 0: all equal; 1: a difference; 2: bad usage.
"use strict";

const fs = require("fs");
const assert = require("assert");

function die(msg) {
    process.stderr.write(`compare_accounts.js: ${msg}\n`);
    process.exit(2);
}
function readUsers(path) {
    try {
        const users = JSON.parse(fs.readFileSync(path, "utf8")).users;
        if (!Array.isArray(users)) throw new Error('no "users" array');
        return users;
    } catch (e) {
        return die(`cannot read ${path}: ${e.message}`);
    }
}

const SECRET = new Set(["passwordHash", "salt"]);
const DERIVED_PROVIDERS = new Set(["password", "phone"]);
// FIELD's value as Firebase holds it: absent booleans are false; customAttributes parsed;
// providerUserInfo without the derived entries, in providerId order
function norm(field, u) {
    const v = u[field];
    switch (field) {
    case "emailVerified":
    case "disabled":
        return v === undefined ? false : v;
    case "customAttributes":
        if (v === undefined) return undefined;
        try { return JSON.parse(v); } catch (e) { return `(not JSON) ${v}`; }
    case "providerUserInfo":
        return (v || []).filter((p) => !DERIVED_PROVIDERS.has(p.providerId))
            .map((p) => Object.fromEntries(["providerId", "rawId", "email", "displayName", "photoUrl"]
                .filter((k) => p[k] !== undefined).map((k) => [k, p[k]])))
            .sort((a, b) => `${a.providerId} ${a.rawId}`.localeCompare(`${b.providerId} ${b.rawId}`));
    default:
        return v;
    }
}
function same(a, b) {
    try { assert.deepStrictEqual(a, b); return true; } catch (e) { return false; }
}
const show = (field, v) => (SECRET.has(field) ? (v === undefined ? "none" : "a value") : JSON.stringify(v));

const [expPath, accPath, ...rest] = process.argv.slice(2);
if (!accPath || rest.length) die("usage: compare_accounts.js EXPECTED ACCOUNTS");
const expected = readUsers(expPath), accounts = readUsers(accPath);
const byId = new Map(accounts.map((a) => [a.localId, a]));
const FIELDS = ["email", "emailVerified", "displayName", "photoUrl", "phoneNumber", "disabled", "customAttributes",
    "passwordHash", "salt", "providerUserInfo"];
const diffs = [];
const seen = new Set();
for (const u of expected) {
    const a = byId.get(u.localId);
    if (seen.has(u.localId)) { diffs.push(`localId ${u.localId}: twice in ${expPath}`); continue; }
    seen.add(u.localId);
    if (!a) { diffs.push(`localId ${u.localId}: no such account in the emulator`); continue; }
    const fields = FIELDS.concat(["createdAt", "lastSignedInAt"].filter((f) => u[f] !== undefined));
    for (const f of fields) {
        const want = norm(f, u), got = norm(f, a);
        if (!same(want, got)) {
            diffs.push(SECRET.has(f) && want !== undefined && got !== undefined
                ? `localId ${u.localId}: ${f}: differs`
                : `localId ${u.localId}: ${f}: expected ${show(f, want)}, got ${show(f, got)}`);
        }
    }
}
for (const a of accounts) if (!seen.has(a.localId)) diffs.push(`localId ${a.localId}: an account not in ${expPath}`);
for (const d of diffs) process.stdout.write(`${d}\n`);
process.stdout.write(`compared ${expected.length} expected users with ${accounts.length} accounts: ${diffs.length} differences\n`);
process.exit(diffs.length ? 1 : 0);
