// A real Better Auth server with its JWT plugin, for the end-to-end suite:
// browsers sign up through its HTTP handler and fetch their JWT with
// `GET {basePath}/token`, exactly as a frontend does.
//
// One node process, three Better Auth instances sharing one in-memory
// database (so one JWKS at /api/auth/jwks lists every key) and one base URL
// (so every token has the same `iss` and `aud`):
//   /api/auth/*         EdDSA (Ed25519), Better Auth's default
//   /rs256/api/auth/*   RS256
//   /es256/api/auth/*   ES256; only the key-rotation test signs with it
// Test-only routes: POST /test/rotate (a new ES256 key, a new kid) and
// POST /test/sign {"alg", "payload"} (Better Auth's own signJWT with the
// claims given, e.g. a wrong `iss` or an `exp` in the past).
//
// Listens on 127.0.0.1:$PORT; BETTER_AUTH_URL and BETTER_AUTH_SECRET as in
// any Better Auth deployment.
import { createServer } from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { createJwk, jwt } from "better-auth/plugins/jwt";

const port = Number(process.env.PORT ?? "4100");
const baseURL = process.env.BETTER_AUTH_URL ?? `http://127.0.0.1:${port}`;
const secret = process.env.BETTER_AUTH_SECRET;
if (!secret) {
  console.error("BETTER_AUTH_SECRET must be set");
  process.exit(2);
}

const db = { user: [], session: [], account: [], verification: [], jwks: [] };

function instance(basePath, keyPairConfig) {
  const jwtOptions = { jwks: { keyPairConfig } };
  const auth = betterAuth({
    baseURL,
    basePath,
    secret,
    database: memoryAdapter(db),
    emailAndPassword: { enabled: true },
    plugins: [jwt(jwtOptions)],
    telemetry: { enabled: false },
  });
  return { auth, jwtOptions, handler: toNodeHandler(auth) };
}

const instances = {
  EdDSA: { prefix: "/api/auth/", ...instance("/api/auth", { alg: "EdDSA", crv: "Ed25519" }) },
  RS256: { prefix: "/rs256/api/auth/", ...instance("/rs256/api/auth", { alg: "RS256", modulusLength: 2048 }) },
  ES256: { prefix: "/es256/api/auth/", ...instance("/es256/api/auth", { alg: "ES256" }) },
};

// Each instance signs with the newest key of its own algorithm, and falls
// back to the newest key of any algorithm when it has none: give each one
// its key before the first request.
for (const { auth, jwtOptions } of Object.values(instances)) {
  await createJwk({ context: await auth.$context }, jwtOptions);
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
}

function reply(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

async function testRoute(req, res, path) {
  if (req.method === "POST" && path === "/test/rotate") {
    const { auth, jwtOptions } = instances.ES256;
    const key = await createJwk({ context: await auth.$context }, jwtOptions);
    return reply(res, 201, { kid: key.id, alg: key.alg });
  }
  if (req.method === "POST" && path === "/test/sign") {
    const { alg, payload } = await body(req);
    const chosen = instances[alg];
    if (!chosen) return reply(res, 400, { error: `no instance signs ${alg}` });
    const { token } = await chosen.auth.api.signJWT({ body: { payload } });
    return reply(res, 200, { token });
  }
  if (req.method === "GET" && path === "/test/health") return reply(res, 200, { status: "ok" });
  return reply(res, 404, { error: "no such route" });
}

createServer((req, res) => {
  const path = new URL(req.url, baseURL).pathname;
  if (path.startsWith("/test/")) {
    return testRoute(req, res, path).catch((e) => reply(res, 500, { error: String(e) }));
  }
  const chosen = Object.values(instances).find((i) => path.startsWith(i.prefix));
  if (!chosen) return reply(res, 404, { error: "no such route" });
  return chosen.handler(req, res);
}).listen(port, "127.0.0.1", () => console.log(`better-auth test server on ${baseURL}`));
