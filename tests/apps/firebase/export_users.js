// tests/apps/firebase/export_users.js -- users made by Firebase itself, and Firebase's own export
// of them, for the test of the mapping reader on a real export (tests/t45_firebase_emulator.sh).
//
//   export_users.js create SPEC CREATED   creates each user of SPEC in the emulator; writes CREATED
//   export_users.js export FILE           writes the project's export to FILE
//
// SPEC is a JSON array of {key, email?, password?, displayName?, photoUrl?, phoneNumber?,
// emailVerified?, disabled?, clerk_user_id?, signIn?}: each user is made by the Admin SDK's
// createUser, so the emulator picks its uid (28 letters and digits, as Firebase does); a
// clerk_user_id becomes its custom claims (customAttributes in the export); signIn: true signs it
// in once with its password (the REST API's accounts:signInWithPassword), so that it has a last
// sign-in time. CREATED gets a JSON array of {key, localId}, in SPEC's order.
// `export` runs firebase-tools' own exporter (accountExporter.serialExportUsers, what `firebase
// auth:export FILE --format=json` runs; the CLI command itself wants a login) against the emulator
// (its legacy downloadAccount endpoint), and writes the file as auth:export does: `{"users": [`,
// each user, `]}`. Exit 0 done, 1 a user could not be made, 2 bad usage or no emulator.
"use strict";

const fs = require("fs");
const os = require("os");
const { HOST, PROJECT, die, rest } = require("./emulator.js");

// 1. create: each user of SPEC, by the Admin SDK.
async function create(specPath, createdPath) {
    const admin = require("firebase-admin");
    admin.initializeApp({ projectId: PROJECT });
    const auth = admin.auth();
    const spec = JSON.parse(fs.readFileSync(specPath, "utf8"));
    const created = [];
    for (const s of spec) {
        const props = {
            email: s.email, password: s.password, displayName: s.displayName, photoURL: s.photoUrl,
            phoneNumber: s.phoneNumber, emailVerified: s.emailVerified, disabled: s.disabled,
        };
        for (const k of Object.keys(props)) if (props[k] === undefined || props[k] === null) delete props[k];
        let user;
        try {
            user = await auth.createUser(props);
            if (s.clerk_user_id) await auth.setCustomUserClaims(user.uid, { clerk_user_id: s.clerk_user_id });
            if (s.signIn) {
                await rest("POST", "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=fake-api-key",
                    { email: s.email, password: s.password, returnSecureToken: true });
            }
        } catch (e) {
            process.stderr.write(`export_users.js: user ${s.key}: ${e.code || "error"}: ${e.message}\n`);
            process.exit(1);
        }
        created.push({ key: s.key, localId: user.uid });
    }
    fs.writeFileSync(createdPath, JSON.stringify(created) + "\n");
}

// 2. export: firebase-tools' exporter, its Google API origin pointed at the emulator (read when
// the module loads; a plain-http local origin gets "Bearer owner", no login).
async function exportUsers(file) {
    process.env.FIREBASE_GOOGLE_URL = `http://${HOST}/www.googleapis.com`;
    const { serialExportUsers } = require("firebase-tools/lib/accountExporter");
    const writeStream = fs.createWriteStream(file);
    writeStream.write('{"users": [' + os.EOL);   // as commands/auth-export.js writes it
    await serialExportUsers(PROJECT, { format: "json", writeStream, batchSize: 1000 });
    writeStream.write("]}");
    writeStream.end();
    await new Promise((resolve, reject) => { writeStream.on("finish", resolve); writeStream.on("error", reject); });
}

async function main() {
    const [cmd, ...args] = process.argv.slice(2);
    if (!HOST) die("FIREBASE_AUTH_EMULATOR_HOST is not set (the emulator's host:port)");
    if (cmd === "create" && args.length === 2) return create(...args);
    if (cmd === "export" && args.length === 1) return exportUsers(...args);
    return die("usage: export_users.js create SPEC CREATED | export FILE");
}

main().catch((e) => die(e.stack || String(e)));
