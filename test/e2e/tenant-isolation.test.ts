/**
 * The attacker suite (docs/security.md): a real cluster (1 server, 1 client, exec
 * profile, platform jobs) probed with the dev CI token, as a pipeline running
 * someone else's code would. Every probe is either refused when it is submitted or
 * fails when it runs, and each test asserts which of the two happened and that no
 * secret appears in anything the attacker can read. Needs root.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { runStages } from "../../scripts/lib/stages/pipeline.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

const ip = { server: "10.93.0.11", client: "10.93.0.101" };
let isolated: IsolatedCluster;
let context: ProviderContext;
let inventory: Inventory;
const tokens = { management: "", dev: "", vaultRoot: "", consul: "" };

async function secret(name: string): Promise<string> {
  return (await $({ quiet: true })`cat ${join(context.state.secrets, name)}`).stdout.trim();
}
const tls = (file: string) => join(context.state.tls, file);
/** curl with the cluster CA and the operator's client certificate (what a pipeline gets as NOMAD_CLIENT_CERT) */
async function api(url: string, token: string, options: { method?: string; body?: unknown; header?: string } = {}) {
  const result = await $({
    quiet: true,
    nothrow: true,
  })`curl -sS --max-time 20 --cacert ${tls("ca.pem")} --cert ${tls("operator.pem")} --key ${tls("operator-key.pem")} -H ${`${options.header ?? "X-Nomad-Token"}: ${token}`} -X ${options.method ?? (options.body ? "POST" : "GET")} ${options.body ? ["--data", JSON.stringify(options.body)] : []} -w ${"\n%{http_code}"} ${url}`;
  const lines = result.stdout.split("\n");
  const status = Number(lines.pop());
  return { status, body: lines.join("\n") };
}
const nomad = (path: string, token: string, body?: unknown, method?: string) =>
  api(`https://${ip.server}:4646${path}`, token, { body, method });
const ssh = (command: string) =>
  $({
    quiet: true,
    nothrow: true,
  })`ssh -i ${join(context.state.root, "ssh", "id_ed25519")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${ip.client} ${command}`;

interface TaskSpec {
  driver?: string;
  user?: string;
  script: string;
  extra?: Record<string, unknown>;
}

/** A one-shot job: no restarts or reschedules, so a refused task fails once and is done. */
function job(id: string, namespace: string, task: TaskSpec, group: Record<string, unknown> = {}, type = "batch") {
  return {
    Job: {
      ID: id,
      Name: id,
      Namespace: namespace,
      Type: type,
      Datacenters: ["*"],
      TaskGroups: [
        {
          Name: "g",
          RestartPolicy: { Attempts: 0, Mode: "fail" },
          ReschedulePolicy: { Attempts: 0, Unlimited: false },
          ...group,
          Tasks: [
            {
              Name: "t",
              Driver: task.driver ?? "exec",
              User: task.user ?? "",
              Config: { command: "/bin/sh", args: ["-c", task.script] },
              Resources: { CPU: 50, MemoryMB: 32 },
              ...task.extra,
            },
          ],
        },
      ],
    },
  };
}

interface Alloc {
  ID: string;
  ClientStatus: string;
  TaskStates?: Record<string, { State: string; Failed: boolean; Events: { Type: string; DisplayMessage: string }[] }>;
}

/** Submit with the dev CI token; the HTTP status and Nomad's answer. */
const submit = (body: ReturnType<typeof job>) => nomad(`/v1/jobs?namespace=${body.Job.Namespace}`, tokens.dev, body);

/** Wait until the job's allocation has run to an end (or is running, when asked), with the operator's token. */
async function settled(id: string, namespace: string, until: (a: Alloc) => boolean, timeoutMs = 90_000): Promise<Alloc> {
  const deadline = Date.now() + timeoutMs;
  let last: Alloc[] = [];
  while (Date.now() < deadline) {
    last = JSON.parse((await nomad(`/v1/job/${id}/allocations?namespace=${namespace}`, tokens.management)).body || "[]");
    const done = last.find(until);
    if (done) return done;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const seen = last.map((a) => `${a.ID.slice(0, 8)} ${a.ClientStatus}: ${events(a).replaceAll("\n", "; ")}`);
  throw new Error(`job ${namespace}/${id}: no allocation reached the expected state: ${seen.join(" | ") || "none"}`);
}
const ended = (a: Alloc) => ["complete", "failed"].includes(a.ClientStatus);

/** Everything the task printed, read with the operator's token (the attacker can read it too: read-logs). */
async function output(alloc: Alloc): Promise<string> {
  const read = async (type: string) =>
    (await nomad(`/v1/client/fs/logs/${alloc.ID}?task=t&type=${type}&plain=true&origin=start`, tokens.management)).body;
  return `${await read("stdout")}\n${await read("stderr")}`;
}
const events = (alloc: Alloc) => (alloc.TaskStates?.t?.Events ?? []).map((e) => e.DisplayMessage).join("\n");
const purge = (id: string, namespace: string) =>
  nomad(`/v1/job/${id}?namespace=${namespace}&purge=true`, tokens.management, undefined, "DELETE");

/** Values an attacker must never see: agent keys, gossip keys, tokens. */
let forbidden: string[] = [];
function expectNoSecret(text: string) {
  for (const value of forbidden) expect(text.includes(value), "a secret value appeared in the attacker's output").toBe(false);
  expect(text).not.toMatch(/BEGIN (EC |RSA )?PRIVATE KEY/);
}

beforeAll(async () => {
  isolated = await isolatedLocalCluster("tenant", {
    name: "tenant",
    topology: { servers: 1, clients: 1 },
    provider: { local: { cidr: "10.93.0.0/24" } },
  });
  context = isolated.context;
  inventory = await localProvider.up(context);
  await withDetails(runStages(context, inventory));
  tokens.management = await secret("nomad-bootstrap-token");
  tokens.dev = await secret("nomad-ci-token-dev");
  tokens.vaultRoot = await secret("vault-root-token");
  tokens.consul = await secret("consul-bootstrap-token");
  const keyBody = async (file: string) =>
    (await ssh(`cat ${file}`)).stdout
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .slice(0, 2)
      .join("\n");
  forbidden = [
    await keyBody("/etc/nomad.d/tls/agent-key.pem"),
    await keyBody("/etc/consul.d/tls/agent-key.pem"),
    await secret("consul-gossip-key"),
    await secret("consul-nomad-agent-token"),
    await secret(`consul-agent-token.${inventory.hosts.find((h) => h.privateIp === ip.client)?.name}`),
    tokens.management,
    tokens.consul,
    tokens.vaultRoot,
  ].filter((v) => v.length > 8);
  expect(forbidden.length).toBeGreaterThanOrEqual(7);
}, 900_000);

afterAll(async () => isolated?.dispose());

describe("a tenant with the dev CI token", () => {
  it("exec as the default user: runs, but reads no agent config or key, has no root group file and no privileged capability", async () => {
    const files = [
      "/etc/nomad.d/tls/agent-key.pem",
      "/etc/consul.d/tls/agent-key.pem",
      "/etc/nomad.d/nomad.hcl",
      "/etc/consul.d/consul.hcl",
      "/etc/consul-template.d/consul-template.hcl",
      "/etc/vault.d/vault.hcl",
    ];
    const script = [
      "id",
      ...files.map((f) => `cat ${f}`),
      "ls /etc",
      "grep ^CapEff /proc/self/status",
      // files the task's group 0 could read that others cannot (Nomad's exec driver sets only the uid)
      "echo group-root-only: $(find / -xdev -type f -group 0 -perm -g=r ! -perm -o=r 2>/dev/null | head -5)",
      "echo probe-done",
    ].join("; ");
    expect((await submit(job("probe-nobody", "dev", { script }))).status).toBe(200);
    const alloc = await settled("probe-nobody", "dev", ended);
    const out = await output(alloc);
    expect(out, events(alloc)).toContain("probe-done"); // it ran: refused at run time, file by file
    expect(out).toMatch(/uid=65534\(nobody\)/);
    for (const f of files) expect(out).toContain(`${f}: No such file or directory`);
    expect(out).not.toMatch(/^(nomad\.d|consul\.d|vault\.d|consul-template\.d)$/m);
    const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(out)?.[1] ?? "ff"}`);
    for (const bit of [
      0n /* chown */,
      1n /* dac_override */,
      2n /* dac_read_search */,
      3n /* fowner */,
      6n,
      7n /* setgid, setuid */,
      21n,
    ]) {
      expect(capEff & (1n << bit), `capability bit ${bit} in ${capEff.toString(16)}`).toBe(0n);
    }
    expect(out).toMatch(/^group-root-only: *$/m);
    expectNoSecret(out);
    await purge("probe-nobody", "dev");
  });

  it.each(["root", "nomad", "consul", "vault"])("exec as %s: refused when it runs, nothing printed", async (user) => {
    const id = `probe-user-${user}`;
    expect((await submit(job(id, "dev", { user, script: "cat /etc/nomad.d/tls/agent-key.pem; echo ran" }))).status).toBe(200);
    const alloc = await settled(id, "dev", ended);
    expect(alloc.ClientStatus).toBe("failed");
    expect(events(alloc)).toMatch(/disallowed/);
    const out = await output(alloc);
    expect(out).not.toContain("ran");
    expectNoSecret(out);
    await purge(id, "dev");
  });

  it.each(["raw_exec", "docker"])("the %s driver: refused at submission in dev", async (driver) => {
    const answer = await submit(job(`probe-${driver}`, "dev", { driver, script: "cat /etc/nomad.d/tls/agent-key.pem" }));
    expect(answer.status).not.toBe(200);
    expect(answer.body).toMatch(new RegExp(`${driver}.*not allowed in namespace`));
    expect((await nomad(`/v1/job/probe-${driver}?namespace=dev`, tokens.management)).status).toBe(404);
  });

  it("a host volume (the platform's Prometheus data): refused at submission", async () => {
    const body = job(
      "probe-volume",
      "dev",
      { script: "ls -la /data", extra: { VolumeMounts: [{ Volume: "data", Destination: "/data" }] } },
      { Volumes: { data: { Name: "data", Type: "host", Source: "prometheus" } } },
    );
    const answer = await submit(body);
    expect(answer.status).toBe(403);
    expect((await nomad("/v1/job/probe-volume?namespace=dev", tokens.management)).status).toBe(404);
  });

  it("deploying to prod or platform with the dev token: refused at submission", async () => {
    for (const namespace of ["prod", "platform", "default"]) {
      const answer = await submit(job("probe-ns", namespace, { script: "true" }));
      expect(answer.status, namespace).toBe(403);
    }
  });

  it("the platform's Nomad variables: refused to the token, and invisible to a same-named dev job", async () => {
    const platformVar = JSON.parse(
      (await nomad("/v1/var/nomad/jobs/energy-exporter?namespace=platform", tokens.management)).body,
    ) as { Items: Record<string, string> };
    const values = Object.values(platformVar.Items);
    expect(values.length).toBeGreaterThan(0);
    forbidden.push(...values.filter((v) => v.length > 8));
    expect((await nomad("/v1/var/nomad/jobs/energy-exporter?namespace=platform", tokens.dev)).status).toBe(403);
    // listing answers 200 with what the token may see: nothing of the platform's
    const listed = await nomad("/v1/vars?namespace=platform", tokens.dev);
    expect(listed.status === 403 || JSON.parse(listed.body).length === 0, listed.body).toBe(true);
    const body = job("energy-exporter", "dev", {
      script: "cat local/own.txt local/platform.txt; echo probe-done",
      extra: {
        Templates: [
          {
            EmbeddedTmpl: '{{ with nomadVar "nomad/jobs/energy-exporter" }}{{ .token }}{{ end }}own',
            DestPath: "local/own.txt",
            ChangeMode: "noop",
          },
          {
            EmbeddedTmpl: '{{ with nomadVar "nomad/jobs/energy-exporter@platform" }}{{ .token }}{{ end }}platform',
            DestPath: "local/platform.txt",
            ChangeMode: "noop",
          },
        ],
      },
    });
    expect((await submit(body)).status).toBe(200);
    await settled("energy-exporter", "dev", () => true);
    await new Promise((r) => setTimeout(r, 20_000)); // templates that cannot render keep retrying; give them time
    const [alloc] = JSON.parse(
      (await nomad("/v1/job/energy-exporter/allocations?namespace=dev", tokens.management)).body,
    ) as Alloc[];
    const seen = `${await output(alloc as Alloc)}\n${events(alloc as Alloc)}`;
    expect(seen).not.toMatch(/^.+platform$/m); // the platform template never rendered with a value
    expectNoSecret(seen);
    await purge("energy-exporter", "dev");
  });

  it("reading prod's Vault secret from a same-named dev job: refused, while its own secret works", async () => {
    const vault = (path: string, data: unknown) =>
      api(`https://${ip.server}:8200/v1/secret/data/${path}`, tokens.vaultRoot, { body: { data }, header: "X-Vault-Token" });
    expect((await vault("prod/app/config", { value: "prod-only-7f3a9c" })).status).toBe(200);
    expect((await vault("dev/app/config", { value: "dev-own-51b2" })).status).toBe(200);
    forbidden.push("prod-only-7f3a9c");
    const reader = (path: string) => ({
      script: "cat local/secret.txt; echo; echo probe-done; sleep 3600",
      extra: {
        Vault: { ChangeMode: "noop" },
        Templates: [
          {
            EmbeddedTmpl: `{{ with secret "secret/data/${path}" }}{{ .Data.data.value }}{{ end }}`,
            DestPath: "local/secret.txt",
            ChangeMode: "noop",
          },
        ],
      },
    });
    // the dev job asks for prod's path; then prod's own job logs in (with entities keyed
    // by job ID alone, that login made prod's path readable to the dev token)
    expect((await submit(job("app", "dev", reader("prod/app/config"), {}, "service"))).status).toBe(200);
    const prodJob = job("app", "prod", reader("prod/app/config"), {}, "service");
    expect((await nomad("/v1/jobs?namespace=prod", tokens.management, prodJob)).status).toBe(200);
    const prod = await settled("app", "prod", (a) => a.ClientStatus === "running");
    await expect.poll(async () => output(prod), { timeout: 60_000 }).toContain("prod-only-7f3a9c");
    await new Promise((r) => setTimeout(r, 15_000)); // the template retries; give it the chance
    const dev = JSON.parse((await nomad("/v1/job/app/allocations?namespace=dev", tokens.management)).body) as Alloc[];
    for (const alloc of dev) {
      expect(alloc.TaskStates?.t?.State, "the dev task must not start with prod's secret").not.toBe("running");
      const seen = `${await output(alloc)}\n${events(alloc)}`;
      expect(seen).not.toContain("prod-only-7f3a9c");
    }
    await purge("app", "dev");
    // control: the same kind of job reads its own namespace's secret
    expect((await submit(job("app", "dev", reader("dev/app/config"), {}, "service"))).status).toBe(200);
    const own = await settled("app", "dev", (a) => a.ClientStatus === "running");
    await expect.poll(async () => output(own), { timeout: 60_000 }).toContain("dev-own-51b2");
    await purge("app", "dev");
    await purge("app", "prod");
  });

  const service = (name: string, tags: string[]) => ({
    Services: [{ Name: name, Provider: "consul", Tags: tags, PortLabel: "http" }],
    Networks: [{ DynamicPorts: [{ Label: "http" }] }],
  });
  const consulCatalog = async (name: string) =>
    JSON.parse(
      (await api(`https://${ip.server}:8501/v1/catalog/service/${name}`, tokens.consul, { header: "X-Consul-Token" })).body,
    ) as { ServiceID: string; ServiceTags: string[] }[];

  it("registering the platform's service name or another namespace's: refused when it runs", async () => {
    const before = (await consulCatalog("prometheus")).length;
    expect(before).toBe(1);
    for (const [id, name] of [
      ["probe-svc-platform", "prometheus"],
      ["probe-svc-prod", "prod-web"],
    ] as const) {
      const body = job(id, "dev", { script: "sleep 3600" }, service(name, ["urlprefix-/prometheus"]), "service");
      expect((await submit(body)).status).toBe(200);
      const alloc = await settled(id, "dev", (a) => a.ClientStatus !== "pending", 90_000);
      expect(alloc.ClientStatus, events(alloc)).toBe("failed");
      await purge(id, "dev");
    }
    expect(await consulCatalog("prometheus")).toHaveLength(before);
    expect(await consulCatalog("prod-web")).toHaveLength(0);
  });

  it("a dev service with a platform route tag registers, but Fabio keeps /prometheus for Prometheus", async () => {
    const body = job(
      "probe-route",
      "dev",
      { script: "sleep 3600" },
      service("dev-web", ["urlprefix-/prometheus", "urlprefix-/dev-web"]),
      "service",
    );
    expect((await submit(body)).status).toBe(200);
    await settled("probe-route", "dev", (a) => a.ClientStatus === "running");
    await expect.poll(async () => (await consulCatalog("dev-web")).length, { timeout: 60_000 }).toBe(1);
    // Fabio refreshes its table from Consul within seconds; look for a while
    for (let i = 0; i < 10; i++) {
      const routes = await $({ quiet: true, nothrow: true })`curl -sS --max-time 5 http://${ip.client}:9998/api/routes`;
      expect(routes.stdout).not.toContain("dev-web");
      const page = await $({ quiet: true, nothrow: true })`curl -sS --max-time 5 http://${ip.client}:9999/prometheus/-/ready`;
      expect(page.stdout).toMatch(/Prometheus Server is Ready/);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await purge("probe-route", "dev");
  });

  it("Prometheus' lifecycle endpoints are not reachable through Fabio", async () => {
    for (const path of ["/-/quit", "/-/reload"]) {
      const answer = await $({
        quiet: true,
        nothrow: true,
      })`curl -sS --max-time 5 -o /dev/null -w %{http_code} -X POST http://${ip.client}:9999/prometheus${path}`;
      expect(answer.stdout, path).not.toMatch(/^2/);
    }
    const ready = await $({ quiet: true, nothrow: true })`curl -sS --max-time 5 http://${ip.client}:9999/prometheus/-/ready`;
    expect(ready.stdout).toMatch(/Prometheus Server is Ready/);
  });

  // Consul and Vault read Nomad's keys from the JWKS proxy on the server (issue 13): a
  // rotation needs no bootstrap run before new workloads get their tokens again
  const sshServer = (command: string) =>
    $({
      quiet: true,
      nothrow: true,
    })`ssh -i ${join(context.state.root, "ssh", "id_ed25519")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${ip.server} ${command}`;
  const proxied = async (path = "/.well-known/jwks.json", method = "GET") =>
    sshServer(
      `curl -sS --max-time 8 --cacert /etc/nomad.d/tls/ca.pem -X ${method} -w '\n%{http_code}' https://127.0.0.1:4649${path}`,
    );
  const rootKeys = async () =>
    JSON.parse((await nomad("/v1/operator/keyring/keys", tokens.management)).body) as { KeyID: string; State: string }[];
  const activeKey = async () => (await rootKeys()).find((k) => k.State === "active")?.KeyID;
  async function rotate(query = ""): Promise<string> {
    const before = await activeKey();
    const answer = await nomad(`/v1/operator/keyring/rotate${query}`, tokens.management, undefined, "PUT");
    expect(answer.status, answer.body).toBe(200);
    const after = await activeKey();
    if (!query.includes("publish_time")) expect(after).not.toBe(before);
    return after as string;
  }
  /** a new dev job: its group service registers (Consul login), its template reads its Vault secret and that service */
  async function newJobReadsSecretAndService(round: string) {
    const id = `rot-${round}`;
    const value = `rotated-${round}-${Date.now()}`;
    const written = await api(`https://${ip.server}:8200/v1/secret/data/dev/${id}/config`, tokens.vaultRoot, {
      body: { data: { value } },
      header: "X-Vault-Token",
    });
    expect(written.status).toBe(200);
    const body = job(
      id,
      "dev",
      {
        script: "while true; do cat local/out.txt; echo; sleep 2; done",
        extra: {
          Vault: { ChangeMode: "noop" },
          Consul: {},
          Templates: [
            {
              EmbeddedTmpl: `secret={{ with secret "secret/data/dev/${id}/config" }}{{ .Data.data.value }}{{ end }}\n{{ range service "dev-${id}" }}service=dev-${id}:{{ .Port }}{{ end }}\n`,
              DestPath: "local/out.txt",
              ChangeMode: "noop",
            },
          ],
        },
      },
      service(`dev-${id}`, []),
      "service",
    );
    expect((await submit(body)).status).toBe(200);
    const alloc = await settled(id, "dev", (a) => a.ClientStatus !== "pending", 120_000);
    expect(alloc.ClientStatus, events(alloc)).toBe("running");
    await expect.poll(async () => output(alloc), { timeout: 90_000, interval: 2000 }).toContain(`secret=${value}`);
    await expect
      .poll(async () => output(alloc), { timeout: 90_000, interval: 2000 })
      .toMatch(new RegExp(`service=dev-${id}:\\d+`));
    await purge(id, "dev");
  }

  it("the JWKS proxy serves only Nomad's public keys, and only on GET /.well-known/jwks.json", async () => {
    const answer = await proxied();
    const [text, status] = [answer.stdout.slice(0, answer.stdout.lastIndexOf("\n")), answer.stdout.split("\n").pop()];
    expect(status, answer.stderr).toBe("200");
    const served = JSON.parse(text) as { keys: Record<string, string>[] };
    const direct = JSON.parse((await nomad("/.well-known/jwks.json", tokens.management)).body) as { keys: { kid: string }[] };
    expect(served.keys.map((k) => k.kid).sort()).toEqual(direct.keys.map((k) => k.kid).sort());
    for (const key of served.keys) expect(Object.keys(key).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]);
    expect((await proxied("/v1/jobs")).stdout.split("\n").pop()).toBe("404");
    expect((await proxied("/v1/agent/self")).stdout.split("\n").pop()).toBe("404");
    expect((await proxied("/.well-known/jwks.json", "POST")).stdout.split("\n").pop()).toBe("405");
    // loopback only: nothing listens on the server's private address
    const outside = await $({
      quiet: true,
      nothrow: true,
    })`curl -sS -k --max-time 5 https://${ip.server}:4649/.well-known/jwks.json`;
    expect(outside.exitCode).not.toBe(0);
  });

  let rotatedKey = "";
  it("after an immediate rotation, a new dev job gets its Vault secret and Consul data without a bootstrap run", async () => {
    rotatedKey = await rotate();
    await newJobReadsSecretAndService("one");
  });

  it("a prepublished key is served before it signs; after a second rotation with the previous key removed, new jobs still work", async () => {
    const publishAt = (Date.now() + 3_600_000) * 1_000_000;
    await rotate(`?publish_time=${publishAt}`);
    const next = (await rootKeys()).find((k) => k.State === "prepublished")?.KeyID;
    expect(next).toBeTruthy();
    await expect.poll(async () => (await proxied()).stdout, { timeout: 30_000 }).toContain(next as string);
    // full: the variables the first rotation's key encrypted are re-encrypted with the new one;
    // once the purged job's allocations are collected nothing uses that key and Nomad lets it go
    await rotate("?full");
    await expect
      .poll(async () => (await rootKeys()).filter((k) => k.State === "rekeying").length, { timeout: 90_000, interval: 2000 })
      .toBe(0);
    let removed = { status: 0, body: "" };
    for (let i = 0; i < 30 && removed.status !== 200; i++) {
      await nomad("/v1/system/gc", tokens.management, undefined, "PUT");
      removed = await nomad(`/v1/operator/keyring/key/${rotatedKey}`, tokens.management, undefined, "DELETE");
      if (removed.status !== 200) await new Promise((r) => setTimeout(r, 2000));
    }
    expect(removed.status, removed.body).toBe(200);
    expect((await rootKeys()).map((k) => k.KeyID)).not.toContain(rotatedKey);
    await expect.poll(async () => (await proxied()).stdout, { timeout: 30_000 }).not.toContain(rotatedKey);
    await newJobReadsSecretAndService("two");
  });

  it("the platform jobs stay healthy throughout", async () => {
    const jobs = JSON.parse((await nomad("/v1/jobs?namespace=platform", tokens.management)).body) as {
      ID: string;
      Status: string;
    }[];
    expect(jobs.map((j) => j.ID).sort()).toEqual(["alertmanager", "energy-exporter", "fabio", "prometheus"]);
    for (const j of jobs) expect(j.Status, j.ID).toBe("running");
  });
});
