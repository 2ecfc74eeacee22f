/**
 * Snapshot and restore on a real 2-node cluster (1 server with Vault, 1 client)
 * whose config names an operator's OpenPGP key (a throwaway key in a temp
 * GNUPGHOME): the unseal share and root token are PGP-wrapped and the snapshot
 * files are encrypted to it. A job, a Vault KV secret, the ACL tokens and the
 * PKI root CA are recorded and snapshotted; the cluster is torn down and
 * bootstrapped again empty (a new CA, new tokens); `npm run restore` decrypts
 * the snapshot with HASHISTACK_GNUPGHOME and brings every one of them back, and
 * the cluster verifies healthy. A restore into a cluster that has data of its
 * own is refused first, changing nothing. Needs root.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { $ } from "zx";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { ciTokenSecret } from "../../scripts/lib/security/tenancy.ts";
import { runStages } from "../../scripts/lib/stages/pipeline.ts";
import { vaultRootToken } from "../../scripts/lib/stages/vault-unseal.ts";
import { SecretStore } from "../../scripts/lib/state/secrets.ts";
import { tempDir } from "../helpers/fixtures.ts";
import { generateTestKey, gnupgHome, stopGnupgHome, type TestPgpKey } from "../helpers/gpg.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

let isolated: IsolatedCluster;
let context: ProviderContext;
let inventory: Inventory;
let configFile: string;
let gpgDir: Awaited<ReturnType<typeof tempDir>> | undefined;
let home: string | undefined;
let operatorKey: TestPgpKey;

const jobId = "restore-probe";
const secretValue = randomBytes(12).toString("hex");

const server = () => inventory.hosts.find((h) => h.roles.includes("server"))?.privateIp as string;
const tls = () => context.state.tls;
const secret = async (name: string) => (await readFile(join(context.state.secrets, name), "utf8")).trim();
/** the root token, PGP-wrapped in the state: decrypted with the operator's keyring */
const rootTokenOfState = () => vaultRootToken(new SecretStore(context.state), home);

/** An API call with the state's CA and operator certificate; status and parsed body. */
async function api(url: string, header: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const result = await $({
    quiet: true,
    nothrow: true,
    input: body === undefined ? "" : JSON.stringify(body),
  })`curl -sS --max-time 20 --cacert ${join(tls(), "ca.pem")} --cert ${join(tls(), "operator.pem")} --key ${join(tls(), "operator-key.pem")} -H ${header} ${body === undefined ? [] : ["-X", "POST", "--data-binary", "@-"]} -w ${"\n%{http_code}"} ${url}`;
  const lines = result.stdout.trimEnd().split("\n");
  const status = Number(lines.pop());
  const text = lines.join("\n");
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (an error text or a PEM)
  }
  return { status, body: parsed };
}
const nomad = async (path: string, token: string, body?: unknown) =>
  api(`https://${server()}:4646${path}`, `X-Nomad-Token: ${token}`, body);
const consul = async (path: string, token: string) => api(`https://${server()}:8501${path}`, `X-Consul-Token: ${token}`);
const vault = async (path: string, token: string, body?: unknown) =>
  api(`https://${server()}:8200${path}`, `X-Vault-Token: ${token}`, body);

const cli = (script: string, args: string[]) =>
  $({ quiet: true, nothrow: true, env: { ...process.env, CI: "true" } })`npx --no-install tsx scripts/${script}.ts ${args}`;

/** What the restore must bring back, recorded on the first cluster. */
interface Recorded {
  nomadManagement: { secret: string; accessor: string };
  ciDev: { secret: string; accessor: string };
  consulManagement: { secret: string; accessor: string };
  rootCa: string;
  rootToken: string;
}
let recorded: Recorded;
let snapshotDir = "";

async function accessor(kind: "nomad" | "consul", token: string): Promise<string> {
  const answer = kind === "nomad" ? await nomad("/v1/acl/token/self", token) : await consul("/v1/acl/token/self", token);
  expect(answer.status, `${kind} token self lookup: ${JSON.stringify(answer.body)}`).toBe(200);
  return (answer.body as { AccessorID: string }).AccessorID;
}

async function runningAllocation(token: string): Promise<{ ID: string; NodeName: string } | undefined> {
  const allocs = (await nomad(`/v1/job/${jobId}/allocations?namespace=dev`, token)).body as {
    ID: string;
    NodeName: string;
    ClientStatus: string;
  }[];
  return Array.isArray(allocs) ? allocs.find((a) => a.ClientStatus === "running") : undefined;
}

async function bootstrapFresh(): Promise<void> {
  inventory = await localProvider.up(context);
  await withDetails(runStages(context, inventory));
}

beforeAll(async () => {
  gpgDir = await tempDir("restore-gpg");
  home = await gnupgHome(join(gpgDir.path, "gnupg"));
  operatorKey = await generateTestKey(home, "operator", join(gpgDir.path, "keys"));
  // the stages in this process and the CLIs it runs decrypt with this keyring
  process.env.HASHISTACK_GNUPGHOME = home;
  isolated = await isolatedLocalCluster("restore", {
    name: "rst",
    topology: { servers: 1, clients: 1, vaultHa: false },
    provider: { local: { cidr: "10.88.0.0/24" } },
    vault: { keyShares: 1, keyThreshold: 1, unsealPgpKeys: [operatorKey.armored], rootTokenPgpKey: operatorKey.armored },
    // this test is about the data; the platform jobs are the 5-node suite's
    jobs: {
      prometheus: { enabled: false },
      alertmanager: { enabled: false },
      grafana: { enabled: false },
      fabio: { enabled: false },
      energyExporter: { enabled: false },
    },
  });
  context = isolated.context;
  configFile = join(isolated.dir, "cluster.yaml");
  await writeFile(configFile, stringify(context.config));
  await bootstrapFresh();
}, 900_000);

afterAll(async () => {
  try {
    await isolated?.dispose();
  } finally {
    delete process.env.HASHISTACK_GNUPGHOME;
    if (home) await stopGnupgHome(home);
    await gpgDir?.remove();
  }
}, 300_000);

describe("snapshot and restore into a cluster bootstrapped empty", () => {
  it("records a job, a KV secret, the tokens and the root CA, and snapshots them", async () => {
    const management = await secret("nomad-bootstrap-token");
    const registered = await nomad("/v1/jobs?namespace=dev", management, {
      Job: {
        ID: jobId,
        Name: jobId,
        Namespace: "dev",
        Type: "service",
        Datacenters: ["*"],
        TaskGroups: [
          {
            Name: "g",
            Tasks: [
              {
                Name: "t",
                Driver: "exec",
                Config: { command: "/bin/sh", args: ["-c", "sleep 86400"] },
                Resources: { CPU: 50, MemoryMB: 32 },
              },
            ],
          },
        ],
      },
    });
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    await expect.poll(() => runningAllocation(management), { timeout: 120_000, interval: 2000 }).toBeTruthy();

    const rootToken = await rootTokenOfState();
    const written = await vault("/v1/secret/data/restore/probe", rootToken, { data: { value: secretValue } });
    expect(written.status, JSON.stringify(written.body)).toBe(200);

    const ciDev = await secret(ciTokenSecret("dev"));
    const consulManagement = await secret("consul-bootstrap-token");
    const rootCa = (await vault("/v1/pki-root/ca/pem", rootToken)).body as string;
    expect(rootCa).toContain("BEGIN CERTIFICATE");
    recorded = {
      nomadManagement: { secret: management, accessor: await accessor("nomad", management) },
      ciDev: { secret: ciDev, accessor: await accessor("nomad", ciDev) },
      consulManagement: { secret: consulManagement, accessor: await accessor("consul", consulManagement) },
      rootCa: rootCa.trim(),
      rootToken,
    };

    const taken = await cli("snapshot", ["--config", configFile, "--output", "json"]);
    expect(taken.exitCode, taken.stderr).toBe(0);
    const result = JSON.parse(taken.stdout) as { dir: string; files: { name: string }[] };
    // encrypted to the operator's key: only .gpg files, none of them a plain gzip (the raft snapshots and the state are)
    expect(result.files.map((f) => f.name)).toEqual(["consul.snap.gpg", "nomad.snap.gpg", "vault.snap.gpg", "state.tar.gz.gpg"]);
    for (const file of result.files) {
      const head = (await readFile(join(result.dir, file.name))).subarray(0, 2);
      expect([...head], file.name).not.toEqual([0x1f, 0x8b]);
    }
    const manifest = JSON.parse(await readFile(join(result.dir, "manifest.json"), "utf8")) as {
      topology: { servers: number; vault: number };
      encryptedTo: string[];
      files: { sha256: string }[];
    };
    expect(manifest.encryptedTo).toEqual([operatorKey.fingerprint]);
    expect(manifest.topology).toMatchObject({ servers: 1, vault: 1 });
    expect(manifest.files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256))).toBe(true);
    snapshotDir = result.dir;
  });

  it("refuses to restore over a cluster with jobs and secrets of its own (exit 2), changing nothing", async () => {
    expect(snapshotDir).not.toBe("");
    const refused = await cli("restore", [snapshotDir, "--config", configFile, "--yes"]);
    expect(refused.exitCode, refused.stderr).toBe(2);
    expect(refused.stderr).toContain("has data of its own that the restore would replace");
    expect(refused.stderr).toContain(`Nomad job dev/${jobId}`);
    expect(refused.stderr).toContain("Vault KV secret/restore/");
    expect(await rootTokenOfState()).toBe(recorded.rootToken);
  });

  it("after a teardown and an empty bootstrap, restore brings back the job, the secret, the tokens and the root CA", async () => {
    expect(snapshotDir).not.toBe("");
    await localProvider.down(context, { dryRun: false, keepState: false });
    await bootstrapFresh();
    // a really new cluster: another CA, and the old tokens mean nothing to it
    const freshRoot = await rootTokenOfState();
    expect(freshRoot).not.toBe(recorded.rootToken);
    expect(((await vault("/v1/pki-root/ca/pem", freshRoot)).body as string).trim()).not.toBe(recorded.rootCa);
    expect((await nomad("/v1/acl/token/self", recorded.nomadManagement.secret)).status).toBe(403);

    const restored = await cli("restore", [snapshotDir, "--config", configFile, "--yes"]);
    expect(restored.exitCode, `${restored.stdout}\n${restored.stderr}`).toBe(0);
    expect(restored.stdout + restored.stderr).toContain("Nomad snapshot restored");

    // the tokens: the snapshot's, in the state, with the same accessors
    expect(await secret("nomad-bootstrap-token")).toBe(recorded.nomadManagement.secret);
    expect(await rootTokenOfState()).toBe(recorded.rootToken);
    expect(await accessor("nomad", recorded.nomadManagement.secret)).toBe(recorded.nomadManagement.accessor);
    expect(await accessor("nomad", recorded.ciDev.secret)).toBe(recorded.ciDev.accessor);
    expect(await accessor("consul", recorded.consulManagement.secret)).toBe(recorded.consulManagement.accessor);
    // the KV secret and the root CA, with the old root token
    const read = await vault("/v1/secret/data/restore/probe", recorded.rootToken);
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect((read.body as { data: { data: { value: string } } }).data.data.value).toBe(secretValue);
    expect(((await vault("/v1/pki-root/ca/pem", recorded.rootToken)).body as string).trim()).toBe(recorded.rootCa);
    expect((await readFile(join(tls(), "ca.pem"), "utf8")).trim()).toBe(recorded.rootCa);
    // the job, running again on this cluster's client
    await expect
      .poll(() => runningAllocation(recorded.nomadManagement.secret), { timeout: 180_000, interval: 3000 })
      .toMatchObject({ NodeName: "client-1" });
    // the restore's work files are gone once it succeeded
    expect((await $({ quiet: true, nothrow: true })`test -e ${join(context.state.root, "restore")}`).exitCode).toBe(1);
  }, 1_800_000); // a teardown, a bootstrap and a restore that runs every stage again

  it("the restored cluster verifies healthy (npm run status exits 0)", async () => {
    const status = await cli("status", ["--config", configFile]);
    expect(status.exitCode, `${status.stdout}\n${status.stderr}`).toBe(0);
  });
});
