/**
 * The Consul client against a real, non-dev Consul server started from the
 * rendered config: HTTPS only, client certificates required, ACL default deny.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { ConsulClient } from "../../../scripts/lib/clients/consul.ts";
import { ApiError } from "../../../scripts/lib/clients/http.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type LoopbackNode, renderLoopbackServer } from "../../helpers/loopback-node.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

const ip = "127.0.0.21";
const bootstrapSecret = "11111111-2222-4333-8444-555555555555";
let dir: Awaited<ReturnType<typeof tempDir>>;
let node: LoopbackNode;
let agent: Agent;
let anonymous: ConsulClient;
let operator: ConsulClient;

beforeAll(async () => {
  dir = await tempDir("consul");
  node = await renderLoopbackServer(dir.path, ip);
  agent = startAgent(
    "consul",
    requireBinary("consul"),
    ["agent", `-config-dir=${node.layout.consul.configDir}`],
    `${dir.path}/consul.log`,
  );
  const tls = { caFile: node.ca.caFile, certFile: node.operator.certFile, keyFile: node.operator.keyFile };
  anonymous = new ConsulClient({ address: `https://${ip}:8501`, ...tls });
  operator = new ConsulClient({ address: `https://${ip}:8501`, token: bootstrapSecret, ...tls });
  await untilReady(agent, () => anonymous.leader());
});

afterAll(async () => {
  await agent?.stop();
  await dir?.remove();
});

describe("Consul client against a real agent", () => {
  it("waits for a leader with a blocking query", async () => {
    await expect(anonymous.waitForLeader(30_000)).resolves.toBe(`${ip}:8300`);
  });

  it("bootstraps ACLs with a locally generated secret, idempotently", async () => {
    await expect(operator.bootstrapAcl(bootstrapSecret)).resolves.toBe(true);
    await expect(operator.bootstrapAcl(bootstrapSecret)).resolves.toBe(false);
    const self = await operator.selfToken();
    expect(self.SecretID).toBe(bootstrapSecret);
    expect(self.Policies?.map((p) => p.Name)).toContain("global-management");
  });

  it("denies anonymous requests (default deny) with a typed error carrying Consul's message", async () => {
    const error = await anonymous.api.get("/v1/acl/tokens").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(403);
    expect((error as ApiError).message).toMatch(/consul GET \/v1\/acl\/tokens failed \(HTTP 403\): .*Permission denied/);
    expect((error as ApiError).hint).toMatch(/token/);
  });

  it("upserts policies and tokens without changing them on a re-run", async () => {
    const policy = { Name: "agent-server-1", Description: "node server-1", Rules: 'node "server-1" { policy = "write" }' };
    expect((await operator.upsertPolicy(policy)).changed).toBe(true);
    expect((await operator.upsertPolicy(policy)).changed).toBe(false);
    expect(
      (await operator.upsertPolicy({ ...policy, Rules: `${policy.Rules}\nservice_prefix "" { policy = "read" }` })).changed,
    ).toBe(true);

    const secret = node.secrets.consulAgentTokens["server-1"] as string;
    const first = await operator.ensureToken({
      SecretID: secret,
      Description: "agent server-1",
      Policies: [{ Name: policy.Name }],
    });
    const second = await operator.ensureToken({
      SecretID: secret,
      Description: "agent server-1",
      Policies: [{ Name: policy.Name }],
    });
    expect([first.created, second.created]).toEqual([true, false]);
    expect(second.token.AccessorID).toBe(first.token.AccessorID);
  });

  it("lists the agent as an alive member", async () => {
    const members = await operator.members();
    expect(members.map((m) => [m.Name, m.Addr, m.Status])).toEqual([["server-1", ip, 1]]);
  });

  it("refuses plain HTTP and clients without a certificate (checked with curl)", async () => {
    const plain = await $({
      nothrow: true,
      quiet: true,
    })`curl -sS -o /dev/null -w %{http_code} http://${ip}:8501/v1/status/leader`;
    expect(plain.stdout).not.toBe("200");
    const noCert = await $({
      nothrow: true,
      quiet: true,
    })`curl -sS --cacert ${node.ca.caFile} https://${ip}:8501/v1/status/leader`;
    expect(noCert.exitCode).not.toBe(0);
    const withCert = await $({
      nothrow: true,
      quiet: true,
    })`curl -sS --cacert ${node.ca.caFile} --cert ${node.operator.certFile} --key ${node.operator.keyFile} https://${ip}:8501/v1/status/leader`;
    expect(withCert.stdout).toBe(`"${ip}:8300"`);
  });

  it("reports an unreachable agent with a hint", async () => {
    const nowhere = new ConsulClient({ address: "https://127.0.0.1:1", caFile: node.ca.caFile, timeoutMs: 2000 });
    const error = (await nowhere.leader().catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBeUndefined();
    expect(error.hint).toBe("Is consul running and reachable at https://127.0.0.1:1?");
  });
});
