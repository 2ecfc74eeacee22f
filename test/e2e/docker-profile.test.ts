/**
 * A cluster in the docker runtime profile on local nodes (1 server, 2 clients):
 * Docker Engine inside the clients from uploaded .debs, images built here and
 * served read-only from this machine (jobs.registry.build), Prometheus,
 * Alertmanager, Fabio and the energy exporter healthy as docker tasks, a re-run
 * that changes nothing, and a CI-token task in `dev` that runs in docker without
 * reaching the node. Grafana and GitLab Runner have no image here: disabled.
 * Needs root.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { runStages } from "../../scripts/lib/stages/pipeline.ts";
import { burnVersusIdle } from "../helpers/energy-e2e.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

const cidr = "10.97.0.0/24";
const registry = "10.97.0.1:5000";
const ip = { server1: "10.97.0.11", client1: "10.97.0.101" };
let isolated: IsolatedCluster;
let context: ProviderContext;

const secret = (name: string) => readFile(join(context.state.secrets, name), "utf8").then((s) => s.trim());
const tls = (file: string) => join(context.state.tls, file);
const nomad = async (path: string, token: string, extra: string[] = []) => {
  const answer = await $({
    quiet: true,
    nothrow: true,
  })`curl -sS --max-time 20 --cacert ${tls("ca.pem")} --cert ${tls("operator.pem")} --key ${tls("operator-key.pem")} -H ${`X-Nomad-Token: ${token}`} ${extra} ${`https://${ip.server1}:4646${path}`}`;
  return answer.stdout;
};

beforeAll(async () => {
  isolated = await isolatedLocalCluster("e2e-docker", {
    name: "dockere2e",
    provider: { local: { cidr } },
    topology: { servers: 1, clients: 2 },
    jobs: { runtime: "docker", registry: { address: registry, build: true, insecure: true }, grafana: { enabled: false } },
  });
  context = isolated.context;
  const inventory = await localProvider.up(context);
  await withDetails(runStages(context, inventory));
}, 1_200_000);

afterAll(async () => isolated?.dispose());

/** a one-task docker job in dev, submitted with the dev environment's CI token */
async function submitDev(
  id: string,
  config: Record<string, unknown>,
  job: { Type?: string; Constraints?: unknown[]; CPU?: number } = {},
): Promise<string> {
  const { CPU = 50, Type = "batch", ...rest } = job;
  return nomad(`/v1/jobs?namespace=dev`, await secret("nomad-ci-token-dev"), [
    "-X",
    "POST",
    "--data",
    JSON.stringify({
      Job: {
        ID: id,
        Name: id,
        Namespace: "dev",
        Type,
        Datacenters: ["*"],
        ...rest,
        TaskGroups: [
          {
            Name: "g",
            RestartPolicy: { Attempts: 0, Mode: "fail" },
            ReschedulePolicy: { Attempts: 0, Unlimited: false },
            Tasks: [{ Name: "t", Driver: "docker", Config: config, Resources: { CPU, MemoryMB: 32 } }],
          },
        ],
      },
    }),
  ]);
}

/** an image built for the cluster that has a shell (Debian base) */
async function shellImage(): Promise<string> {
  const built = JSON.parse(await readFile(join(context.state.root, "images.json"), "utf8")) as Record<string, string>;
  return `${registry}/${built.alertmanager}`;
}

interface Alloc {
  ID: string;
  ClientStatus: string;
  TaskStates?: Record<string, { State: string; Events: { Type: string; DisplayMessage: string }[] }>;
}

async function waitForAlloc(job: string, namespace: string, token: string, done: (a: Alloc) => boolean): Promise<Alloc[]> {
  let allocs: Alloc[] = [];
  for (let i = 0; i < 90; i++) {
    allocs = JSON.parse((await nomad(`/v1/job/${job}/allocations?namespace=${namespace}`, token)) || "[]") as Alloc[];
    if (allocs.some(done)) return allocs;
    await sleep(2000);
  }
  return allocs;
}

describe("the docker runtime profile on local nodes", () => {
  it("runs Prometheus, Alertmanager, Fabio and the energy exporter as docker tasks, images from the cluster's registry", async () => {
    const token = await secret("nomad-bootstrap-token");
    for (const job of ["prometheus", "alertmanager", "fabio", "energy-exporter"]) {
      const spec = JSON.parse(await nomad(`/v1/job/${job}?namespace=platform`, token)) as {
        Status: string;
        TaskGroups: { Tasks: { Driver: string; Config: { image: string } }[] }[];
      };
      expect(spec.Status, job).toBe("running");
      for (const task of spec.TaskGroups.flatMap((g) => g.Tasks)) {
        expect(task.Driver, job).toBe("docker");
        expect(task.Config.image, job).toMatch(new RegExp(`^${registry.replace(".", "\\.")}/hashistack/`));
      }
      const allocs = await waitForAlloc(job, "platform", token, (a) => a.ClientStatus === "running");
      expect(allocs.filter((a) => a.ClientStatus === "running").length, job).toBeGreaterThan(0);
    }
  });

  it("Prometheus's targets are up and Fabio routes /prometheus and /alertmanager", async () => {
    let targets: { labels: Record<string, string>; health: string }[] = [];
    for (let i = 0; i < 30; i++) {
      const answer = await $({
        quiet: true,
        nothrow: true,
      })`curl -sS --max-time 10 http://${ip.client1}:9999/prometheus/api/v1/targets`;
      if (answer.exitCode === 0) {
        targets = (JSON.parse(answer.stdout) as { data: { activeTargets: typeof targets } }).data.activeTargets;
        if (targets.length && targets.every((t) => t.health === "up")) break;
      }
      await sleep(5000);
    }
    const jobs = new Set(targets.map((t) => t.labels.job));
    for (const job of ["nomad-servers", "nomad-clients", "consul", "vault", "energy-exporter", "fabio", "alertmanager"])
      expect(jobs, job).toContain(job);
    expect(
      targets.filter((t) => t.health !== "up").map((t) => t.labels.job),
      "targets down",
    ).toEqual([]);
    const ready = await $({
      quiet: true,
      nothrow: true,
    })`curl -sS --max-time 10 -o /dev/null -w %{http_code} http://${ip.client1}:9999/alertmanager/-/ready`;
    expect(ready.stdout).toBe("200");
    // the built image carries the same Prometheus 3 build as the exec profile, discovering through Consul
    const api = async (path: string) =>
      JSON.parse(
        (await $({ quiet: true, nothrow: true })`curl -sS --max-time 10 http://${ip.client1}:9999/prometheus/api/v1/${path}`)
          .stdout,
      ) as { data: { version?: string; yaml?: string } };
    expect((await api("status/buildinfo")).data.version).toBe("3.16.0");
    expect((await api("status/config")).data.yaml).toContain("consul_sd_configs:");
  });

  it("a re-run changes nothing: Docker up to date, images up to date, no platform job changed", async () => {
    const inventory = await localProvider.up(context);
    const records = await withDetails(runStages(context, inventory));
    expect(records.prepare?.summary).toContain("Docker Engine up to date");
    expect(records.images?.summary).toContain("images up to date");
    expect(records.platform?.summary).toBe("no changes");
  }, 600_000);

  it("a CI-token task in dev runs in docker without reaching the node", async () => {
    const management = await secret("nomad-bootstrap-token");
    const image = await shellImage();
    const submit = (id: string, config: Record<string, unknown>) => submitDev(id, { image, ...config });
    const events = (allocs: Alloc[]) =>
      allocs.flatMap((a) => Object.values(a.TaskStates ?? {}).flatMap((s) => s.Events.map((e) => e.DisplayMessage)));
    const finished = (a: Alloc) => a.ClientStatus === "failed" || a.ClientStatus === "complete";
    try {
      // the node's root as a docker volume: refused by the plugin (volumes off)
      await submit("probe-volume", {
        entrypoint: ["/bin/cat"],
        args: ["/host/etc/nomad.d/tls/agent-key.pem"],
        volumes: ["/:/host"],
      });
      const volume = await waitForAlloc("probe-volume", "dev", management, finished);
      expect(volume.every((a) => a.ClientStatus !== "complete")).toBe(true);
      expect(events(volume).join("\n")).toMatch(/volumes are not enabled/i);

      // a privileged container: refused by the plugin
      await submit("probe-privileged", { entrypoint: ["/bin/true"], privileged: true });
      const privileged = await waitForAlloc("probe-privileged", "dev", management, finished);
      expect(privileged.every((a) => a.ClientStatus !== "complete")).toBe(true);
      expect(events(privileged).join("\n")).toMatch(/privileged mode is disabled/i);

      // a plain container runs, and its /etc/nomad.d is not the node's
      await submit("probe-read", {
        entrypoint: ["/bin/sh", "-c"],
        // the pause lets Nomad's docker logger attach before a container this short exits
        args: ["sleep 2; ls /etc/nomad.d 2>&1; cat /etc/nomad.d/tls/agent-key.pem 2>&1; echo probe-finished; sleep 2"],
      });
      const read = await waitForAlloc("probe-read", "dev", management, finished);
      const done = read.find((a) => a.ClientStatus === "complete");
      expect(done, JSON.stringify(events(read))).toBeDefined();
      // the docker logger copies the container's output after the task has ended: poll for it
      let stdout = "";
      for (let tries = 0; tries < 30 && !stdout.includes("probe-finished"); tries++) {
        if (tries) await sleep(1000);
        stdout = await nomad(`/v1/client/fs/logs/${done?.ID}?task=t&type=stdout&plain=true&origin=start`, management);
      }
      expect(stdout).toContain("probe-finished");
      expect(stdout).not.toContain("PRIVATE KEY");
      expect(stdout).toMatch(/No such file or directory/);
    } finally {
      for (const id of ["probe-volume", "probe-privileged", "probe-read"])
        await nomad(`/v1/job/${id}?namespace=dev&purge=true`, management, ["-X", "DELETE"]);
    }
  }, 600_000);

  it("the energy exporter attributes a CPU-burning docker task in dev clearly more energy than an idle one, with its Nomad labels", async () => {
    const management = await secret("nomad-bootstrap-token");
    const image = await shellImage();
    const onClient1 = {
      Type: "service",
      CPU: 100,
      Constraints: [{ LTarget: "${node.unique.name}", RTarget: "client-1", Operand: "=" }],
    };
    const shell = (script: string) => ({ image, entrypoint: ["/bin/sh", "-c"], args: [script] });
    await submitDev("e2e-docker-burn", shell("while :; do :; done"), onClient1);
    await submitDev("e2e-docker-idle", shell("exec sleep 3600"), onClient1);
    try {
      const scrape = async () =>
        (await $({ quiet: true, nothrow: true })`curl -sS --max-time 5 http://${ip.client1}:9875/metrics`).stdout;
      const result = await burnVersusIdle(scrape, { burn: "e2e-docker-burn", idle: "e2e-docker-idle" });
      const running = async (job: string) =>
        (await waitForAlloc(job, "dev", management, (a) => a.ClientStatus === "running")).find(
          (a) => a.ClientStatus === "running",
        );
      for (const [job, series] of [
        ["e2e-docker-burn", result.burnSeries],
        ["e2e-docker-idle", result.idleSeries],
      ] as const) {
        const alloc = await running(job);
        // one series per task, named from the container's Nomad identity
        expect(
          series.map((s) => s.labels),
          job,
        ).toEqual([
          expect.objectContaining({ nomad_namespace: "dev", nomad_job: job, task_group: "g", task: "t", alloc_id: alloc?.ID }),
        ]);
      }
      expect(result.burned).toBeGreaterThan(0);
      expect(result.burned).toBeGreaterThan(10 * Math.max(result.idled, 0.001));
    } finally {
      for (const id of ["e2e-docker-burn", "e2e-docker-idle"])
        await nomad(`/v1/job/${id}?namespace=dev&purge=true`, management, ["-X", "DELETE"]);
    }
  }, 300_000);
});
