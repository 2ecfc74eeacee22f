// Managed by hashistack-bootstrap (templates/jwks-proxy/nomad-jwks-proxy.mjs).
//
// Nomad's JWKS for Consul and Vault on this node. Nomad's HTTP API requires a client
// certificate (verify_https_client), which Consul's and Vault's JWT auth methods cannot
// present, so this proxy holds the node's Nomad certificate and serves exactly one thing
// over TLS without a client certificate: GET /.well-known/jwks.json, reduced to the public
// members of each key. Every other path and method is refused. It listens on loopback
// only; Consul and Vault on this node fetch it whenever a token names a key they do not
// know yet, so a rotated (or prepublished) Nomad key is trusted without an operator run.
// Configuration comes from the unit's environment; SIGHUP re-reads the certificate
// (the unit's reload follows Nomad's, which consul-template triggers on renewal).
//
// With JWKS_PROXY_METRICS_HOST/PORT set it also checks, every
// JWKS_PROXY_CHECK_INTERVAL_MS (default 30 s), that it can fetch Nomad's keys, and
// serves the outcome as Prometheus metrics over plain HTTP on that address (GET
// /metrics only): whether the last check worked, when one last worked, how many keys
// Nomad served and when the certificate it presents expires. No key material, key id,
// token or Nomad data is in them; they are what the NomadKeysNotServed alert reads.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

function setting(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`nomad-jwks-proxy: ${name} is not set`);
    process.exit(64);
  }
  return value;
}

const listenHost = setting("JWKS_PROXY_HOST");
const listenPort = Number(setting("JWKS_PROXY_PORT"));
const nomadUrl = new URL("/.well-known/jwks.json", setting("JWKS_PROXY_NOMAD_ADDR"));
const files = { ca: setting("JWKS_PROXY_CA_FILE"), cert: setting("JWKS_PROXY_CERT_FILE"), key: setting("JWKS_PROXY_KEY_FILE") };
const path = "/.well-known/jwks.json";
const maxBody = 1024 * 1024;
/** the public members of a JWK per key type (RFC 7517/7518/8037); nothing else is passed on */
const publicMembers = {
  RSA: ["n", "e"],
  EC: ["crv", "x", "y"],
  OKP: ["crv", "x"],
};
const commonMembers = ["kty", "kid", "use", "alg"];

function readTls() {
  return { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

let tls = readTls();

function publicKeys(jwks) {
  if (!jwks || !Array.isArray(jwks.keys)) throw new Error("Nomad's answer has no keys array");
  return jwks.keys.flatMap((key) => {
    const members = publicMembers[key?.kty];
    if (!members || typeof key.kid !== "string") return [];
    const out = {};
    for (const name of [...commonMembers, ...members]) if (typeof key[name] === "string") out[name] = key[name];
    return [out];
  });
}

function fetchNomadKeys() {
  return new Promise((resolve, reject) => {
    const request = https.request(
      nomadUrl,
      { method: "GET", ca: tls.ca, cert: tls.cert, key: tls.key, timeout: 5000, headers: { accept: "application/json" } },
      (response) => {
        const chunks = [];
        let size = 0;
        response.on("data", (chunk) => {
          size += chunk.length;
          if (size > maxBody) request.destroy(new Error("Nomad's answer is larger than 1 MiB"));
          else chunks.push(chunk);
        });
        response.on("end", () => {
          if (response.statusCode !== 200) return reject(new Error(`Nomad answered ${response.statusCode}`));
          try {
            resolve(publicKeys(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
          } catch (error) {
            reject(error);
          }
        });
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error("Nomad did not answer within 5s")));
    request.on("error", reject);
    request.end();
  });
}

function reply(response, status, body, extraHeaders = {}) {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...extraHeaders,
  });
  response.end(response.req.method === "HEAD" ? undefined : text);
}

const server = https.createServer({ ca: tls.ca, cert: tls.cert, key: tls.key, minVersion: "TLSv1.2" }, (request, response) => {
  if (new URL(request.url ?? "/", "https://proxy").pathname !== path) return reply(response, 404, { error: "not found" });
  if (request.method !== "GET" && request.method !== "HEAD")
    return reply(response, 405, { error: "method not allowed" }, { allow: "GET, HEAD" });
  fetchNomadKeys().then(
    (keys) => reply(response, 200, { keys }),
    (error) => {
      console.error(`nomad-jwks-proxy: ${error.message}`);
      reply(response, 502, { error: "Nomad's keys are not available" });
    },
  );
});
server.requestTimeout = 10_000;
server.headersTimeout = 5_000;

// What the last checks found, for /metrics (see the top of this file).
const health = { up: 0, keys: 0, lastSuccess: 0, failures: 0 };

function certificateExpiry() {
  try {
    return Math.floor(Date.parse(new X509Certificate(tls.cert).validTo) / 1000);
  } catch {
    return 0;
  }
}

function checkNomad() {
  return fetchNomadKeys().then(
    (keys) => {
      health.up = 1;
      health.keys = keys.length;
      health.lastSuccess = Date.now() / 1000;
    },
    (error) => {
      if (health.up === 1 || health.failures === 0) console.error(`nomad-jwks-proxy: check failed: ${error.message}`);
      health.up = 0;
      health.failures++;
    },
  );
}

function metricsText() {
  const gauge = (name, help, value, type = "gauge") => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`;
  return [
    gauge("hashistack_jwks_proxy_nomad_up", "Whether the last check fetched Nomad's signing keys (1) or failed (0).", health.up),
    gauge("hashistack_jwks_proxy_keys", "Public signing keys Nomad served at the last successful check.", health.keys),
    gauge(
      "hashistack_jwks_proxy_last_success_timestamp_seconds",
      "When a check last fetched Nomad's signing keys (0: never).",
      health.lastSuccess,
    ),
    gauge("hashistack_jwks_proxy_check_failures_total", "Checks that could not fetch Nomad's signing keys.", health.failures, "counter"),
    gauge(
      "hashistack_jwks_proxy_certificate_expiry_timestamp_seconds",
      "When the certificate the proxy presents to Consul and Vault expires.",
      certificateExpiry(),
    ),
  ].join("");
}

const metricsHost = process.env.JWKS_PROXY_METRICS_HOST;
const metricsPort = Number(process.env.JWKS_PROXY_METRICS_PORT ?? "");
if (metricsHost && metricsPort) {
  const interval = Number(process.env.JWKS_PROXY_CHECK_INTERVAL_MS ?? "30000");
  const metrics = http.createServer((request, response) => {
    const pathname = new URL(request.url ?? "/", "http://proxy").pathname;
    if (pathname !== "/metrics") return reply(response, 404, { error: "not found" });
    if (request.method !== "GET" && request.method !== "HEAD")
      return reply(response, 405, { error: "method not allowed" }, { allow: "GET, HEAD" });
    const text = metricsText();
    response.writeHead(200, { "content-type": "text/plain; version=0.0.4", "content-length": Buffer.byteLength(text) });
    response.end(request.method === "HEAD" ? undefined : text);
  });
  metrics.requestTimeout = 10_000;
  metrics.headersTimeout = 5_000;
  void checkNomad();
  setInterval(() => void checkNomad(), interval).unref();
  metrics.listen(metricsPort, metricsHost, () => console.log(`nomad-jwks-proxy: metrics on ${metricsHost}:${metricsPort}`));
}

process.on("SIGHUP", () => {
  try {
    tls = readTls();
    server.setSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key });
    console.log("nomad-jwks-proxy: certificate reloaded");
  } catch (error) {
    console.error(`nomad-jwks-proxy: keeping the previous certificate: ${error.message}`);
  }
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));

server.listen(listenPort, listenHost, () => console.log(`nomad-jwks-proxy: serving ${path} on ${listenHost}:${listenPort}`));
