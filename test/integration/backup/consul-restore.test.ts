/**
 * The Consul part of `npm run restore` against real Consul servers started from
 * the rendered config (HTTPS, mTLS, ACLs): server A with a KV key and its own
 * management token is snapshotted and goes away; server B starts empty with the
 * same node name and address but its own node ID and token (a fresh cluster of
 * the same topology). After the restore A's token is the one accepted, A's key
 * is there, and the node registers again under B's node ID (the old entry that
 * held its name was removed), which Consul would otherwise refuse for good.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restoreConsulVia } from "../../../scripts/lib/backup/restore.ts";
import { ConsulClient } from "../../../scripts/lib/clients/consul.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type LoopbackNode, renderLoopbackServer } from "../../helpers/loopback-node.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

const ip = "127.0.0.89";
let dirs: Awaited<ReturnType<typeof tempDir>>[] = [];
let agent: Agent | undefined;

async function startServer(name: string, token: string): Promise<{ node: LoopbackNode; consul: ConsulClient; id: string }> {
  const dir = await tempDir(`consul-restore-${name}`);
  dirs.push(dir);
  const node = await renderLoopbackServer(dir.path, ip);
  agent = startAgent(
    "consul",
    requireBinary("consul"),
    ["agent", `-config-dir=${node.layout.consul.configDir}`],
    `${dir.path}/consul.log`,
  );
  const tls = { caFile: node.ca.caFile, certFile: node.operator.certFile, keyFile: node.operator.keyFile };
  const consul = new ConsulClient({ address: `https://${ip}:8501`, token, ...tls });
  await untilReady(agent, () => consul.leader());
  await consul.waitForLeader(30_000);
  for (let i = 0; ; i++) {
    try {
      await consul.bootstrapAcl(token);
      break;
    } catch (error) {
      if (i > 60) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const self = await consul.api.get<{ Config: { NodeID: string } }>("/v1/agent/self");
  return { node, consul, id: self.Config.NodeID };
}

const catalogId = async (consul: ConsulClient) =>
  (await consul.api.get<{ Node: string; ID: string }[]>("/v1/catalog/nodes")).find((n) => n.Node === "server-1")?.ID;

async function until<T>(probe: () => Promise<T>, want: T, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe().catch(() => undefined);
    if (last === want) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`expected ${String(want)}, still ${String(last)} after ${timeoutMs} ms`);
}

let tokenA: string;
let tokenB: string;
let idA: string;
let b: Awaited<ReturnType<typeof startServer>>;
let snapshot: Buffer;

beforeAll(async () => {
  tokenA = randomUUID();
  tokenB = randomUUID();
  const a = await startServer("a", tokenA);
  idA = a.id;
  await until(() => catalogId(a.consul), idA, 60_000);
  await a.consul.api.put("/v1/kv/app/config", "from-cluster-a");
  snapshot = Buffer.from((await a.consul.api.request<ArrayBuffer>("GET", "/v1/snapshot", { responseType: "arraybuffer" })).data);
  await agent?.stop();
  b = await startServer("b", tokenB);
  await until(() => catalogId(b.consul), b.id, 60_000);
}, 240_000);

afterAll(async () => {
  await agent?.stop();
  for (const dir of dirs) await dir.remove();
  dirs = [];
});

describe("restoring Consul's snapshot into a fresh server of the same name", () => {
  it("restores A's data and tokens, and the node registers again under its own node ID", async () => {
    expect(b.id).not.toBe(idA);
    expect(await restoreConsulVia(b.consul, snapshot, [tokenB, tokenA])).toBe(1);
    const withA = new ConsulClient({ ...b.consul.api.options, token: tokenA });
    expect((await withA.api.get<{ SecretID: string }>("/v1/acl/token/self")).SecretID).toBe(tokenA);
    expect(await withA.api.getText("/v1/kv/app/config", { raw: true })).toBe("from-cluster-a");
    // the leader's reconcile registers the live member again: with the old entry gone, under B's ID
    await expect.poll(() => catalogId(withA), { timeout: 120_000, interval: 2000 }).toBe(b.id);
  }, 180_000);
});
