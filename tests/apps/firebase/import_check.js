// tests/apps/firebase/import_check.js -- imports a phasemig import file (RUN-ID-firebase-import.json,
// the JSON `firebase auth:import` reads) into the Auth emulator with the Admin SDK's importUsers,
// as `firebase auth:import FILE --hash-algo ...` would, then reads every account back.
//
//   import_check.js FILE [--hash-algo ALGO] [--hash-key B64] [--salt-separator B64] [--rounds N]
//                   [--mem-cost N] [--parallelization N] [--block-size N] [--dk-len N] [--out ACCOUNTS]
//
// The hash flags are firebase auth:import's, checked by firebase-tools' own code (accountImporter's
// validateOptions: a missing key or rounds is refused as the CLI refuses it), one algorithm per call
// as Firebase takes them. The project (GCLOUD_PROJECT, demo-phasemig) must hold no account yet, so
// that what is read back is exactly what this import made.
// Prints to stderr "imported: N succeeded, N failed" and each error as "error: index I (localId X):
// MESSAGE" (the index in the file's users array); writes the accounts read back (accounts:batchGet)
// as {"users": [...]} in the auth:export JSON shape, password hashes in standard base64, to ACCOUNTS
// (stdout when absent: they hold password hashes, which a test log must not). Exit 0: every user
// imported; 1: a user was refused (or the call failed); 2: bad usage or no emulator.
"use strict";

const fs = require("fs");
const admin = require("firebase-admin");
const { validateOptions, validateUserJson } = require("firebase-tools/lib/accountImporter");
const { PROJECT, die, parseArgs, allAccounts, toStdBase64 } = require("./emulator.js");

const HASH_FLAGS = ["hash-algo", "hash-key", "salt-separator", "rounds", "mem-cost", "parallelization", "block-size", "dk-len"];
const BATCH = 1000;   // importUsers takes at most 1000 users a call

// 1. The hash flags, as firebase-tools checks them, made the Admin SDK's UserImportOptions.
function hashOptions(o) {
    let v;
    try {
        v = validateOptions({
            hashAlgo: o["hash-algo"], hashKey: o["hash-key"], saltSeparator: o["salt-separator"], rounds: o.rounds,
            memCost: o["mem-cost"], parallelization: o.parallelization, blockSize: o["block-size"], dkLen: o["dk-len"],
        });
    } catch (e) {
        die(`firebase auth:import would refuse these flags: ${e.message}`);
    }
    if (!v.hashAlgo) return undefined;
    const buf = (b64) => (b64 === undefined || b64 === "" ? undefined : Buffer.from(b64, "base64"));
    const num = (s) => (s === undefined || Number.isNaN(Number(s)) ? undefined : Number(s));
    const hash = {
        algorithm: v.hashAlgo, key: buf(v.hashKey), saltSeparator: buf(v.saltSeparator), rounds: num(v.rounds),
        memoryCost: num(v.memCost ?? v.cpuMemCost), parallelization: num(v.parallelization),
        blockSize: num(v.blockSize), derivedKeyLength: num(v.dkLen),
    };
    for (const k of Object.keys(hash)) if (hash[k] === undefined) delete hash[k];
    return { hash };
}

// 2. One record of the file (auth:import's keys) as the Admin SDK's UserImportRecord; throws
// what firebase auth:import's own file check (validateUserJson) says of it.
function toImportRecord(u) {
    const bad = validateUserJson(u);
    if (bad.error) throw new Error(bad.error.replace(/^[\s\S]*\n\} /, ""));
    const r = {
        uid: u.localId, email: u.email, emailVerified: u.emailVerified, displayName: u.displayName,
        photoURL: u.photoUrl, phoneNumber: u.phoneNumber, disabled: u.disabled,
    };
    if (u.passwordHash) r.passwordHash = Buffer.from(u.passwordHash, "base64");
    if (u.salt) r.passwordSalt = Buffer.from(u.salt, "base64");
    if (u.customAttributes !== undefined) {
        try {
            r.customClaims = JSON.parse(u.customAttributes);
        } catch (e) {
            throw new Error(`customAttributes is not JSON: ${e.message}`);
        }
    }
    if (u.providerUserInfo) {
        r.providerData = u.providerUserInfo.map((p) => ({
            uid: p.rawId, providerId: p.providerId, email: p.email, displayName: p.displayName, photoURL: p.photoUrl,
        }));
    }
    const date = (ms) => (ms === undefined ? undefined : new Date(Number(ms)).toUTCString());
    if (u.createdAt !== undefined || u.lastSignedInAt !== undefined) {
        r.metadata = { creationTime: date(u.createdAt), lastSignInTime: date(u.lastSignedInAt) };
    }
    for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
    return r;
}

// 3. An account read back, in the auth:export JSON shape (keys in its order, bytes in standard base64).
function exported(a) {
    const out = {};
    const keys = ["localId", "email", "emailVerified", "passwordHash", "salt", "displayName", "photoUrl",
        "lastLoginAt", "createdAt", "phoneNumber", "disabled", "customAttributes"];
    for (const k of keys) if (a[k] !== undefined) out[k === "lastLoginAt" ? "lastSignedInAt" : k] = a[k];
    if (out.passwordHash) out.passwordHash = toStdBase64(out.passwordHash);
    if (out.salt) out.salt = toStdBase64(out.salt);
    if (a.providerUserInfo) {
        out.providerUserInfo = a.providerUserInfo.map((p) => {
            const q = {};
            for (const k of ["providerId", "rawId", "email", "displayName", "photoUrl"]) if (p[k] !== undefined) q[k] = p[k];
            return q;
        });
    }
    return out;
}

async function main() {
    const { positional, opts } = parseArgs(process.argv.slice(2), [...HASH_FLAGS, "out"]);
    if (positional.length !== 1) die("usage: import_check.js FILE [--hash-algo ALGO ...] [--out ACCOUNTS]");
    let users;
    try {
        users = JSON.parse(fs.readFileSync(positional[0], "utf8")).users;
    } catch (e) {
        die(`cannot read ${positional[0]}: ${e.message}`);
    }
    if (!Array.isArray(users)) die(`${positional[0]}: no "users" array`);
    const options = hashOptions(opts);
    admin.initializeApp({ projectId: PROJECT });
    const auth = admin.auth();
    const before = await allAccounts().catch((e) => die(`the emulator does not answer: ${e.message}`));
    if (before.length) die(`project ${PROJECT} already holds ${before.length} accounts: import into a fresh one`);

    // 4. Each record converted (a record auth:import's file check refuses is an error at its
    // index, never sent), then imported by batches; the SDK's and the emulator's refusals
    // come back per index within the batch.
    const errors = [];
    const records = [];   // [index in the file, record]
    users.forEach((u, i) => {
        try {
            records.push([i, toImportRecord(u)]);
        } catch (e) {
            errors.push({ index: i, localId: u && u.localId, message: e.message });
        }
    });
    let succeeded = 0;
    for (let b = 0; b < records.length; b += BATCH) {
        const batch = records.slice(b, b + BATCH);
        try {
            const res = await auth.importUsers(batch.map(([, r]) => r), options);
            succeeded += res.successCount;
            for (const e of res.errors) {
                const [i] = batch[e.index];
                errors.push({ index: i, localId: users[i].localId, message: `${e.error.code}: ${e.error.message}` });
            }
        } catch (e) {   // the whole call refused (a hash option, a missing algorithm)
            for (const [i] of batch) errors.push({ index: i, localId: users[i].localId, message: `${e.code || "error"}: ${e.message}` });
        }
    }
    errors.sort((x, y) => x.index - y.index);
    process.stderr.write(`imported: ${succeeded} succeeded, ${errors.length} failed\n`);
    for (const e of errors) process.stderr.write(`error: index ${e.index} (localId ${e.localId}): ${e.message}\n`);

    // 5. Every account of the project, read back.
    const accounts = (await allAccounts()).map(exported).sort((x, y) => (x.localId < y.localId ? -1 : 1));
    const text = JSON.stringify({ users: accounts }, null, 2) + "\n";
    if (opts.out) fs.writeFileSync(opts.out, text); else process.stdout.write(text);
    process.exit(errors.length ? 1 : 0);
}

main().catch((e) => die(e.stack || String(e)));
