/**
 * Task discovery and enrichment against a real `nomad agent -dev` (ACLs on)
 * running real raw_exec tasks: one burning a CPU, one sleeping. The exporter
 * reads the host's real cgroups and /proc and asks the agent with a token that
 * has only the documented minimal policy.
 *
 * This host is cgroup v1 with cpu and cpuacct mounted apart, and Nomad puts
 * tasks in cpu/nomad/<alloc>.<task> only, so task CPU time comes from the
 * processes in that cgroup (method procfs); the test asserts whichever layout
 * discovery reports, so it also holds on a v2 or cpuacct host.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { ApiError, HttpApi } from "../../../scripts/lib/clients/http.ts";
import { NomadClient } from "../../../scripts/lib/clients/nomad.ts";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { defaultDockerParents, discoverTaskCgroups } from "../../../scripts/lib/energy/cgroups.ts";
import { exporterConfigSchema } from "../../../scripts/lib/energy/config.ts";
import { fsHostReader } from "../../../scripts/lib/energy/host.ts";
import { NomadAllocationDirectory } from "../../../scripts/lib/energy/nomad-metadata.ts";
import { type RunningExporter, startExporter } from "../../../scripts/lib/energy/run.ts";
import { minimalPolicy } from "../../../scripts/lib/energy/acl.ts";
import { parseExporterConfig } from "../../../scripts/lib/energy/config.ts";
import { deployJobs } from "../../../scripts/lib/deploy/deploy.ts";
import { jobFile } from "../../../scripts/lib/platform/jobs.ts";
import { clusterNamespaces, platformNamespace } from "../../../scripts/lib/cluster/nomad-acl.ts";
import { type EnergyNomadDev, purgeJob, runRawExecJob, startEnergyNomadDev } from "../../helpers/energy-nomad.ts";
import { tempDir } from "../../helpers/fixtures.ts";

const ip = "127.0.0.60";
const secret = "60606060-0000-4000-8000-000000000060";
let dir: Awaited<ReturnType<typeof tempDir>>;
let nomad: EnergyNomadDev | undefined;
let management: NomadClient;
let readerToken: string;
let nodeId: string;
let allocId: string;
let running: RunningExporter | undefined;

beforeAll(async () => {
  dir = await tempDir("energy-nomad");
  nomad = await startEnergyNomadDev(ip, secret);
  management = nomad.management;
  nodeId = nomad.nodeId;
  await management.upsertNamespace({ Name: "dev", Description: "energy test" });
  await management.upsertPolicy("energy-exporter", "energy exporter: read allocations", minimalPolicy);
  readerToken = (await management.createToken({ Name: "energy-exporter", Type: "client", Policies: ["energy-exporter"] }))
    .SecretID;
  allocId = await runRawExecJob(nomad, {
    id: "burn",
    namespace: "dev",
    group: "work",
    tasks: [
      { name: "spin", command: "/bin/sh", args: ["-c", "while :; do :; done"] },
      { name: "idle", command: "/bin/sleep", args: ["3600"] },
    ],
  });
}, 180_000);

afterAll(async () => {
  await running?.stop();
  // stop the job first so the agent does not leave task processes behind
  await purgeJob(nomad, "burn", "dev");
  await sleep(2000);
  await nomad?.stop();
  await dir?.remove();
});

describe("the exporter against a real Nomad agent", () => {
  it("finds the tasks' cgroups on this host and reports the layout", async () => {
    let mine: ReturnType<typeof discoverTaskCgroups> = [];
    for (let i = 0; i < 50 && mine.length < 2; i++) {
      mine = discoverTaskCgroups(fsHostReader, { root: "/sys/fs/cgroup", dockerParents: defaultDockerParents }).filter(
        (c) => c.allocId === allocId,
      );
      if (mine.length < 2) await sleep(200);
    }
    expect(mine.map((c) => c.task).sort()).toEqual(["idle", "spin"]);
    const layout = (await $({ quiet: true })`cat /proc/self/mountinfo`).stdout.includes("cgroup2 /sys/fs/cgroup ")
      ? "cgroup-v2"
      : undefined;
    if (layout) expect(mine[0]?.method).toBe("cgroup-v2");
    console.log(`task cgroups on this host: ${mine.map((c) => `${c.dir} (${c.method})`).join(", ")}`);
  });

  it("names the allocation's namespace, job and group with a token holding only the minimal policy", async () => {
    const api = new HttpApi("nomad", { address: nomad?.address ?? "", token: readerToken }, "X-Nomad-Token");
    const directory = new NomadAllocationDirectory(api, { nodeId });
    const meta = await directory.lookup([allocId]);
    expect(meta.get(allocId)).toEqual({ namespace: "dev", job: "burn", group: "work" });
    expect(directory.errors).toBe(0);
    // the policy is minimal: no node or agent reads, no writes
    await expect(api.get("/v1/agent/self")).rejects.toBeInstanceOf(ApiError);
    await expect(
      api.post("/v1/jobs", {
        Job: {
          ID: "x",
          Name: "x",
          Namespace: "dev",
          Type: "batch",
          Datacenters: ["*"],
          TaskGroups: [{ Name: "g", Count: 1, Tasks: [{ Name: "t", Driver: "raw_exec", Config: { command: "/bin/true" } }] }],
        },
      }),
    ).rejects.toMatchObject({ status: 403 });
    // without the node ID it would need agent:read: the lookup fails, is counted, and does not throw
    const blind = new NomadAllocationDirectory(api);
    expect((await blind.lookup([allocId])).size).toBe(0);
    expect(blind.errors).toBe(1);
  });

  it.each(["exec", "docker"])(
    "the job file plans in the %s profile through the deploy library, with the variables the platform stage passes",
    async (runtime) => {
      for (const namespace of clusterNamespaces("exec")) await management.upsertNamespace(namespace);
      const [result] = await deployJobs(
        management,
        { files: [jobFile("energy-exporter")], variables: { runtime, carbon_region: "FR", pue: "1.4" }, dryRun: true },
        createRecordingReporter(),
      );
      expect(result?.error, `${result?.error?.message} ${result?.error?.details.join(" ")}`).toBeUndefined();
      expect(result).toMatchObject({ jobId: "energy-exporter", namespace: platformNamespace, outcome: "changes-pending" });
      const job = await management.api.post<{
        Type: string;
        TaskGroups: { Tasks: { Driver: string; Templates: { EmbeddedTmpl: string; DestPath: string }[] }[] }[];
      }>("/v1/jobs/parse", {
        JobHCL: readFileSync(jobFile("energy-exporter"), "utf8"),
        Variables: `runtime = "${runtime}"\npue = "1.2"\ncarbon_region = "DE"`,
      });
      const task = job.TaskGroups[0]?.Tasks[0];
      expect(task?.Driver).toBe(runtime === "exec" ? "raw_exec" : "docker");
      // the config the task gets is valid for the exporter
      const config = parseExporterConfig(
        task?.Templates.find((t) => t.DestPath.endsWith("energy.yaml"))?.EmbeddedTmpl ?? "",
        "energy.yaml",
      );
      expect(config.carbon).toMatchObject({ pue: 1.2, region: "DE" });
    },
  );

  it("exports more energy for the burning task than for the sleeping one", async () => {
    const config = exporterConfigSchema.parse({
      listen: `${ip}:9875`,
      interval: 1,
      source: "model",
      node: "dev-client",
      nomad: { address: nomad?.address, nodeId },
    });
    const reporter = createRecordingReporter();
    running = await startExporter(config, reporter, { token: readerToken });
    await sleep(4500);
    const text = await (await fetch(`http://${ip}:9875/metrics`)).text();
    const joules = (task: string) => {
      const line = text
        .split("\n")
        .find(
          (l) =>
            l.startsWith("hashistack_energy_task_joules_total{") &&
            l.includes(`alloc_id="${allocId}"`) &&
            l.includes(`task="${task}"`),
        );
      expect(line, `no series for ${task} in:\n${text}`).toBeDefined();
      expect(line).toContain('nomad_namespace="dev",nomad_job="burn",task_group="work"');
      return Number(line?.split(" ").pop());
    };
    const spin = joules("spin");
    const idle = joules("idle");
    expect(spin).toBeGreaterThan(0);
    expect(spin).toBeGreaterThan(10 * idle);
    expect(text).toContain('hashistack_energy_nomad_lookup_errors_total{node="dev-client"} 0');
    expect((await fetch(`http://${ip}:9875/healthz`)).status).toBe(200);
  });
});
