/**
 * The Nomad JWKS proxy (templates/jwks-proxy/nomad-jwks-proxy.mjs) in front of a real
 * Nomad server whose HTTPS API requires client certificates, as on the cluster: it
 * answers GET /.well-known/jwks.json without a client certificate with Nomad's own
 * keys, public members only, refuses everything else, and follows a rotation at once.
 * Its metrics listener reports whether its checks reach Nomad, for the NomadKeysNotServed alert.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

const nomadPort = 24646;
const proxyPort = 24649;
const metricsPort = 24650;
const script = join(import.meta.dirname, "..", "..", "..", "templates", "jwks-proxy", "nomad-jwks-proxy.mjs");
let dir: Awaited<ReturnType<typeof tempDir>>;
let nomad: Agent | undefined;
let proxy: Agent | undefined;
let tls: { ca: string; cert: string; key: string };

const curl = async (args: string[]) => {
  const result = await $({ quiet: true, nothrow: true })`curl -sS --max-time 10 -w ${"\n%{http_code}"} ${args}`;
  const lines = result.stdout.split("\n");
  return { status: lines.pop() ?? "", body: lines.join("\n"), code: result.exitCode, stderr: result.stderr };
};
const viaProxy = (path = "/.well-known/jwks.json", method = "GET") =>
  curl(["--cacert", tls.ca, "-X", method, `https://127.0.0.1:${proxyPort}${path}`]);
const viaNomad = (path: string, method = "GET") =>
  curl(["--cacert", tls.ca, "--cert", tls.cert, "--key", tls.key, "-X", method, `https://127.0.0.1:${nomadPort}${path}`]);
const metric = async (name: string) => {
  const answer = await curl([`http://127.0.0.1:${metricsPort}/metrics`]);
  const line = answer.body.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
};
const kids = (body: string) => (JSON.parse(body) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();

beforeAll(async () => {
  dir = await tempDir("jwks-proxy");
  const bin = requireBinary("nomad");
  await $({ quiet: true, cwd: dir.path })`${bin} tls ca create`;
  await $({ quiet: true, cwd: dir.path })`${bin} tls cert create -server -region global`;
  tls = {
    ca: join(dir.path, "nomad-agent-ca.pem"),
    cert: join(dir.path, "global-server-nomad.pem"),
    key: join(dir.path, "global-server-nomad-key.pem"),
  };
  const config = join(dir.path, "server.hcl");
  await writeFile(
    config,
    `bind_addr = "127.0.0.1"
data_dir  = "${join(dir.path, "data")}"
ports {
  http = ${nomadPort}
  rpc  = ${nomadPort + 1}
  serf = ${nomadPort + 2}
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
server {
  enabled          = true
  bootstrap_expect = 1
}
tls {
  http                   = true
  rpc                    = true
  ca_file                = "${tls.ca}"
  cert_file              = "${tls.cert}"
  key_file               = "${tls.key}"
  verify_server_hostname = true
  verify_https_client    = true
}
`,
  );
  nomad = startAgent("nomad", bin, ["agent", `-config=${config}`], join(dir.path, "nomad.log"));
  await untilReady(
    nomad,
    async () => {
      const answer = await viaNomad("/.well-known/jwks.json");
      if (answer.status !== "200" || !kids(answer.body).length) throw new Error(`no keys yet: ${answer.status}`);
    },
    90_000,
  );
  proxy = startAgent("jwks-proxy", "node", [script], join(dir.path, "proxy.log"), {
    JWKS_PROXY_HOST: "127.0.0.1",
    JWKS_PROXY_PORT: String(proxyPort),
    JWKS_PROXY_NOMAD_ADDR: `https://127.0.0.1:${nomadPort}`,
    JWKS_PROXY_CA_FILE: tls.ca,
    JWKS_PROXY_CERT_FILE: tls.cert,
    JWKS_PROXY_KEY_FILE: tls.key,
    JWKS_PROXY_METRICS_HOST: "127.0.0.1",
    JWKS_PROXY_METRICS_PORT: String(metricsPort),
    JWKS_PROXY_CHECK_INTERVAL_MS: "500",
  });
  await untilReady(proxy, async () => {
    if ((await viaProxy()).status !== "200") throw new Error("proxy not ready");
  });
}, 150_000);

afterAll(async () => {
  await proxy?.stop();
  await nomad?.stop();
  await dir?.remove();
});

describe("the Nomad JWKS proxy", () => {
  it("is needed: Nomad refuses a caller without a client certificate", async () => {
    const direct = await curl(["--cacert", tls.ca, `https://127.0.0.1:${nomadPort}/.well-known/jwks.json`]);
    expect(direct.status).not.toBe("200");
  });

  it("serves Nomad's keys without a client certificate, with their public members only", async () => {
    const served = await viaProxy();
    expect(served.status, served.stderr).toBe("200");
    expect(kids(served.body)).toEqual(kids((await viaNomad("/.well-known/jwks.json")).body));
    for (const key of (JSON.parse(served.body) as { keys: Record<string, string>[] }).keys)
      expect(Object.keys(key).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]);
  });

  it("refuses every other path and method", async () => {
    for (const path of ["/v1/jobs", "/v1/agent/self", "/.well-known/openid-configuration", "/.well-known/jwks.json/../v1/jobs"])
      expect((await viaProxy(path)).status, path).toBe("404");
    const post = await viaProxy("/.well-known/jwks.json", "POST");
    expect(post.status).toBe("405");
  });

  it("serves a new key as soon as Nomad has one (rotation, prepublished key)", async () => {
    const management = await curl([
      "--cacert",
      tls.ca,
      "--cert",
      tls.cert,
      "--key",
      tls.key,
      "-X",
      "PUT",
      `https://127.0.0.1:${nomadPort}/v1/operator/keyring/rotate?publish_time=${(Date.now() + 3_600_000) * 1_000_000}`,
    ]);
    expect(management.status, management.body).toBe("200");
    const nomadKeys = kids((await viaNomad("/.well-known/jwks.json")).body);
    expect(nomadKeys.length).toBeGreaterThanOrEqual(2);
    expect(kids((await viaProxy()).body)).toEqual(nomadKeys);
  });

  it("reports its checks as metrics: Nomad reached, the keys counted, the certificate's expiry; nothing else served", async () => {
    await expect.poll(() => metric("hashistack_jwks_proxy_nomad_up"), { timeout: 5000 }).toBe(1);
    const served = kids((await viaNomad("/.well-known/jwks.json")).body).length;
    await expect.poll(() => metric("hashistack_jwks_proxy_keys"), { timeout: 5000 }).toBe(served);
    const lastSuccess = (await metric("hashistack_jwks_proxy_last_success_timestamp_seconds")) ?? 0;
    expect(Math.abs(lastSuccess - Date.now() / 1000)).toBeLessThan(30);
    const notAfter = (await $({ quiet: true })`openssl x509 -noout -enddate -in ${tls.cert}`).stdout
      .trim()
      .replace("notAfter=", "");
    expect(await metric("hashistack_jwks_proxy_certificate_expiry_timestamp_seconds")).toBe(Date.parse(notAfter) / 1000);
    const body = (await curl([`http://127.0.0.1:${metricsPort}/metrics`])).body;
    expect(body).not.toMatch(/"kid"|"n":/);
    expect((await curl([`http://127.0.0.1:${metricsPort}/.well-known/jwks.json`])).status).toBe("404");
    expect((await curl(["-X", "POST", `http://127.0.0.1:${metricsPort}/metrics`])).status).toBe("405");
  });

  it("answers 502 without leaking why when Nomad is down, and re-reads its certificate on SIGHUP", async () => {
    proxy?.child.kill("SIGHUP");
    await expect.poll(() => proxy?.log() ?? "", { timeout: 5000 }).toContain("certificate reloaded");
    await nomad?.stop();
    const down = await viaProxy();
    expect(down.status).toBe("502");
    expect(down.body.trim()).toBe('{"error":"Nomad\'s keys are not available"}');
    // its checks notice: the metric the NomadKeysNotServed alert reads drops to 0
    await expect.poll(() => metric("hashistack_jwks_proxy_nomad_up"), { timeout: 5000 }).toBe(0);
    expect(await metric("hashistack_jwks_proxy_check_failures_total")).toBeGreaterThan(0);
  });
});
