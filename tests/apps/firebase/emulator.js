// tests/apps/firebase/emulator.js -- what the checker scripts share: their command-line
// arguments, and the Auth emulator's REST API (FIREBASE_AUTH_EMULATOR_HOST, tests/lib/
// firebase_emulator.sh), reached as the Admin SDK and firebase-tools reach it, with
// `Authorization: Bearer owner`, which the emulator takes as an administrator.
"use strict";

const HOST = process.env.FIREBASE_AUTH_EMULATOR_HOST;
const PROJECT = process.env.GCLOUD_PROJECT || "demo-phasemig";

// die(MSG): a usage or setup error (exit 2), never mistaken for a check that failed (exit 1)
function die(msg) {
    process.stderr.write(`${process.argv[1].replace(/.*\//, "")}: ${msg}\n`);
    process.exit(2);
}

// parseArgs(ARGV, KNOWN): {positional: [...], opts: {name: value}}; "--name value" and
// "--name=value" both, as firebase-tools takes its flags; an option not in KNOWN is refused
function parseArgs(argv, known) {
    const positional = [], opts = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith("--")) { positional.push(a); continue; }
        let [name, value] = a.slice(2).split(/=(.*)/s, 2);
        if (!known.includes(name)) die(`unknown option --${name}`);
        if (value === undefined) {
            if (i + 1 >= argv.length) die(`--${name} needs a value`);
            value = argv[++i];
        }
        opts[name] = value;
    }
    return { positional, opts };
}

function needHost() {
    if (!HOST) die("FIREBASE_AUTH_EMULATOR_HOST is not set (the emulator's host:port)");
    return HOST;
}

// rest(METHOD, PATH, BODY): the emulator's JSON answer; throws with its error message
async function rest(method, path, body) {
    const res = await fetch(`http://${needHost()}${path}`, {
        method,
        headers: { Authorization: "Bearer owner", "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${json.error ? json.error.message : "?"}`);
    return json;
}

// allAccounts(PROJECT): every account, by accounts:batchGet pages (the API's own shape)
async function allAccounts(project = PROJECT) {
    const users = [];
    let token = "";
    do {
        const q = `maxResults=1000${token ? `&nextPageToken=${encodeURIComponent(token)}` : ""}`;
        const page = await rest("GET", `/identitytoolkit.googleapis.com/v1/projects/${project}/accounts:batchGet?${q}`);
        users.push(...(page.users || []));
        token = page.nextPageToken || "";
    } while (token);
    return users;
}

// the API sends bytes in web-safe base64; import and export files hold standard base64
const toStdBase64 = (s) => s.replace(/_/g, "/").replace(/-/g, "+");

module.exports = { HOST, PROJECT, die, parseArgs, rest, allAccounts, toStdBase64 };
