/**
 * The Nomad client against a real Nomad server started from the rendered
 * config: mTLS on HTTP with client verification, ACLs enabled.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { ApiError } from "../../../scripts/lib/clients/http.ts";
import { NomadClient } from "../../../scripts/lib/clients/nomad.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type LoopbackNode, renderLoopbackServer } from "../../helpers/loopback-node.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

const ip = "127.0.0.22";
const bootstrapSecret = "22222222-3333-4444-8555-666666666666";
let dir: Awaited<ReturnType<typeof tempDir>>;
let node: LoopbackNode;
let agent: Agent;
let anonymous: NomadClient;
let operator: NomadClient;

beforeAll(async () => {
  dir = await tempDir("nomad");
  node = await renderLoopbackServer(dir.path, ip);
  agent = startAgent(
    "nomad",
    requireBinary("nomad"),
    ["agent", `-config=${node.layout.nomad.configFile}`],
    `${dir.path}/nomad.log`,
  );
  // the rendered config trusts the Nomad server name, not the IP we dial
  const tls = {
    caFile: node.ca.caFile,
    certFile: node.operator.certFile,
    keyFile: node.operator.keyFile,
    serverName: "server.global.nomad",
  };
  anonymous = new NomadClient({ address: `https://${ip}:4646`, ...tls });
  operator = new NomadClient({ address: `https://${ip}:4646`, token: bootstrapSecret, ...tls });
  await untilReady(agent, () =>
    anonymous.agentSelf().catch((e: unknown) => {
      if (e instanceof ApiError && e.status === 403) return undefined; // up, ACLs on
      throw e;
    }),
  );
});

afterAll(async () => {
  await agent?.stop();
  await dir?.remove();
});

describe("Nomad client against a real server", () => {
  it("waits for a leader", async () => {
    const leader = await anonymous.api.waitFor<string, string>("/v1/status/leader", (l) => l || undefined, {
      timeoutMs: 30_000,
      what: "a Nomad leader",
    });
    expect(leader).toBe(`${ip}:4647`);
  });

  it("bootstraps ACLs with our own secret, idempotently", async () => {
    await expect(operator.bootstrapAcl(bootstrapSecret)).resolves.toBe(true);
    await expect(operator.bootstrapAcl(bootstrapSecret)).resolves.toBe(false);
    const self = await operator.selfToken();
    expect([self.SecretID, self.Type]).toEqual([bootstrapSecret, "management"]);
  });

  it("denies anonymous requests", async () => {
    // (namespace listing filters by ACL instead of failing: [] for anonymous)
    expect(await anonymous.namespaces()).toEqual([]);
    const error = (await anonymous.api.get("/v1/jobs").catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(403);
    expect(error.apiMessage).toMatch(/Permission denied/i);
  });

  it("creates the dev and prod namespaces once", async () => {
    for (const name of ["dev", "prod"]) {
      expect(await operator.upsertNamespace({ Name: name, Description: `${name} workloads` })).toBe(true);
      expect(await operator.upsertNamespace({ Name: name, Description: `${name} workloads` })).toBe(false);
    }
    expect((await operator.namespaces()).map((n) => n.Name).sort()).toEqual(["default", "dev", "prod"]);
  });

  it("creates a policy and a client token limited to it", async () => {
    const rules = 'namespace "dev" { policy = "write" }';
    expect(await operator.upsertPolicy("ci-deploy", "CI deploys to dev", rules)).toBe(true);
    expect(await operator.upsertPolicy("ci-deploy", "CI deploys to dev", rules)).toBe(false);
    const token = await operator.createToken({ Name: "ci", Type: "client", Policies: ["ci-deploy"] });
    const ci = new NomadClient({ ...operator.api.options, token: token.SecretID });
    await expect(ci.api.get("/v1/jobs", { namespace: "dev" })).resolves.toEqual([]);
    await expect(ci.api.get("/v1/jobs", { namespace: "default" })).rejects.toMatchObject({ status: 403 });
  });

  it("revokes a token and deletes a policy once: a second call reports no change", async () => {
    await operator.upsertPolicy("to-revoke", "revoked below", 'namespace "dev" { policy = "read" }');
    const token = await operator.createToken({ Name: "old", Type: "client", Policies: ["to-revoke"] });
    expect(await operator.deleteToken(token.AccessorID)).toBe(true);
    expect(await operator.deleteToken(token.AccessorID)).toBe(false);
    await expect(new NomadClient({ ...operator.api.options, token: token.SecretID }).selfToken()).rejects.toMatchObject({
      status: 403,
    });
    expect(await operator.deletePolicy("to-revoke")).toBe(true);
    expect(await operator.deletePolicy("to-revoke")).toBe(false);
  });

  it("refuses plain HTTP and clients without a certificate (checked with curl)", async () => {
    const plain = await $({
      nothrow: true,
      quiet: true,
    })`curl -sS -o /dev/null -w %{http_code} http://${ip}:4646/v1/status/leader`;
    expect(plain.stdout).not.toBe("200");
    const noCert = await $({
      nothrow: true,
      quiet: true,
    })`curl -sS --cacert ${node.ca.caFile} --resolve server.global.nomad:4646:${ip} https://server.global.nomad:4646/v1/status/leader`;
    expect(noCert.exitCode).not.toBe(0);
  });

  it("rejects a server certificate that does not carry the expected name", async () => {
    const wrongName = new NomadClient({ ...operator.api.options, serverName: "server.other.nomad", timeoutMs: 5000 });
    const error = (await wrongName.leader().catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.apiMessage).toMatch(/server.other.nomad/);
  });
});
