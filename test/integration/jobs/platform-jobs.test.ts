/**
 * The platform job files against a real Nomad agent: every job parses,
 * validates and plans in both runtime profiles through the deploy library, and
 * the configs of the jobs this machine cannot run for real (Grafana and the
 * GitLab Runner: neither binary nor image is reachable here) are rendered by
 * Nomad's own template runner from the Nomad variables bootstrap writes, then
 * checked with independent parsers (Python's tomllib, YAML, JSON).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { $ } from "zx";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { deployJobs } from "../../../scripts/lib/deploy/deploy.ts";
import type { InputError } from "../../../scripts/lib/errors.ts";
import { jobFile, type PlatformJobName, platformJobs, platformVariables } from "../../../scripts/lib/platform/jobs.ts";
import { clusterNamespaces, platformNamespace } from "../../../scripts/lib/cluster/nomad-acl.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { SecretStore } from "../../../scripts/lib/state/secrets.ts";
import { loopbackInventory, makeConfig, tempDir } from "../../helpers/fixtures.ts";
import { type NomadDev, startNomadDev } from "../../helpers/nomad-dev.ts";

const jobs: PlatformJobName[] = ["prometheus", "alertmanager", "fabio", "grafana", "gitlab-runner"];
const runnerToken = "glrt-integration-test-token";
let nomadDev: NomadDev;
let state: Awaited<ReturnType<typeof tempDir>>;
const savedEnv = { ...process.env };

beforeAll(async () => {
  state = await tempDir("platform-state");
  nomadDev = await startNomadDev({
    ip: "127.0.0.71",
    httpPort: 15646,
    bootstrapSecret: "71717171-0000-4000-8000-000000000071",
    vaultAddress: "http://127.0.0.71:18200",
    hostVolumes: ["prometheus", "grafana"],
  });
  for (const namespace of clusterNamespaces("exec")) await nomadDev.management.upsertNamespace(namespace);
});

afterAll(async () => {
  process.env = { ...savedEnv };
  await nomadDev?.stop();
  await state?.remove();
});

describe("platform job files", () => {
  it.each(["exec", "docker"])("parse, validate and plan in the %s profile", async (runtime) => {
    const reporter = createRecordingReporter();
    const results = await deployJobs(
      nomadDev.management,
      { files: jobs.map(jobFile), variables: { runtime }, dryRun: true },
      reporter,
    ).catch((error: unknown) => {
      throw new Error(`${(error as InputError).message}\n${(error as InputError).details?.join("\n")}`);
    });
    for (const result of results) {
      expect(result.error, `${result.jobId}: ${result.error?.message} ${result.error?.details.join(" ")}`).toBeUndefined();
      expect(result).toMatchObject({ namespace: platformNamespace, outcome: "changes-pending" });
      expect(result.plan?.diffType).toBe("Added");
    }
    expect(results.map((r) => r.jobId).sort()).toEqual([...jobs].sort());
  });

  it("every job states deployment health that survives a loaded node and still fails inside bootstrap's wait", async () => {
    const all: PlatformJobName[] = [...jobs, "energy-exporter"];
    const seconds = (ns: number) => ns / 1e9;
    for (const name of all) {
      const job = await nomadDev.management.parseJob({
        JobHCL: await readFile(jobFile(name), "utf8"),
        Variables: 'runtime = "exec"',
        Canonicalize: true,
      });
      for (const group of job.TaskGroups ?? []) {
        const update = group.Update as { HealthCheck: string; MinHealthyTime: number; HealthyDeadline: number; ProgressDeadline: number };
        const where = `${name}/${group.Name}`;
        expect(update.HealthCheck, where).toBe("checks");
        expect(seconds(update.MinHealthyTime), where).toBeGreaterThanOrEqual(5);
        expect(seconds(update.HealthyDeadline), where).toBe(180);
        // Nomad's verdict comes before the platform stage's 300 s wait
        expect(seconds(update.ProgressDeadline), where).toBe(240);
        const checks = (group.Services as { Checks: { Interval: number; Timeout: number; FailuresBeforeCritical: number }[] }[])
          .flatMap((s) => s.Checks ?? []);
        expect(checks.length, where).toBeGreaterThan(0);
        for (const check of checks) {
          expect(seconds(check.Interval), where).toBe(2);
          expect(seconds(check.Timeout), where).toBe(4);
          expect(check.FailuresBeforeCritical, where).toBe(3);
          // min_healthy_time sees at least one more passing check after the first
          expect(seconds(update.MinHealthyTime), where).toBeGreaterThan(seconds(check.Interval));
        }
        // a system job has no reschedule: a crashing task must be restarted, never failed
        if (job.Type === "system") expect((group.RestartPolicy as { Mode: string }).Mode, where).toBe("delay");
      }
    }
  });

  it("refuses an unknown runtime with the job's own validation message", async () => {
    const error = await deployJobs(
      nomadDev.management,
      { files: [jobFile("prometheus")], variables: { runtime: "podman" }, dryRun: true },
      createRecordingReporter(),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).message + JSON.stringify(error)).toMatch(/runtime must be \\?"docker\\?" or \\?"exec\\?"/);
  });

  it("renders Grafana's provisioning and the runner's config.toml from the Nomad variables, with no secret in the job", async () => {
    process.env.HASHISTACK_STATE_DIR = state.path;
    process.env.GITLAB_RUNNER_TOKEN = runnerToken;
    const config = makeConfig({ jobs: { runtime: "exec", gitlabRunner: { enabled: true, url: "https://gitlab.example.com" } } });
    const secrets = new SecretStore(statePaths(config.name));
    // on the dev agent the binaries are "installed": we only want Nomad to render the templates
    const selected = (await platformJobs(config, secrets, async () => true)).filter(
      (j) => j.name === "grafana" || j.name === "gitlab-runner",
    );
    const inventory = loopbackInventory([{ name: "server-1", roles: ["server", "vault", "client"], ip: "127.0.0.71" }]);
    const variables = await platformVariables(config, inventory, secrets, selected);
    for (const [path, items] of Object.entries(variables)) {
      await nomadDev.management.upsertVariable(platformNamespace, path, items);
    }
    // the dev agent has no Consul: the services register in Nomad instead, nothing else changes
    const sources = await Promise.all(
      selected.map(async (j) => ({
        file: j.file,
        source: (await readFile(j.file, "utf8"))
          .replaceAll('provider = "consul"', 'provider = "nomad"')
          // a Consul-only check setting that Nomad's own checks refuse
          .replace(/^\s*failures_before_critical\s*=.*$/gm, "")
          // the packages' users do not exist on this machine
          .replace(/: "(grafana|gitlab-runner)"$/m, ': "nobody"'),
      })),
    );
    const results = await deployJobs(
      nomadDev.management,
      { files: sources, variables: { runtime: "exec" }, detach: true },
      createRecordingReporter(),
    );
    expect(results.map((r) => r.outcome)).toEqual(["registered", "registered"]);

    // the tasks cannot start here (no grafana/gitlab-runner binary), but their templates render first
    const rendered = async (job: string, task: string, file: string) => {
      for (let i = 0; i < 60; i++) {
        const allocs = await nomadDev.management.jobAllocations(job, platformNamespace);
        for (const alloc of allocs) {
          const path = join(nomadDev.dataDir, "alloc", alloc.ID, task, file);
          if (existsSync(path)) return readFile(path, "utf8");
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      const events = (await nomadDev.management.jobAllocations(job, platformNamespace)).map((a) => JSON.stringify(a.TaskStates));
      throw new Error(`${job}/${task}/${file} was never rendered; task states: ${events.join("; ")}`);
    };

    const toml = await rendered("gitlab-runner", "runner", "secrets/config.toml");
    const parsed = await $({ quiet: true, input: toml })`python3 -c ${"import sys, tomllib, json; print(json.dumps(tomllib.loads(sys.stdin.read())))"}`;
    expect(JSON.parse(parsed.stdout)).toMatchObject({
      concurrent: 2,
      listen_address: ":9252",
      runners: [{ url: "https://gitlab.example.com", token: runnerToken, executor: "shell" }],
    });

    const datasources = parseYaml(await rendered("grafana", "grafana", "local/provisioning/datasources/prometheus.yml")) as {
      datasources: { url: string; uid: string }[];
    };
    expect(datasources.datasources[0]).toMatchObject({ uid: "prometheus", url: "http://127.0.0.1:9999/prometheus" });
    const env = await rendered("grafana", "grafana", "secrets/admin.env");
    expect(env).toContain(`GF_SECURITY_ADMIN_PASSWORD="${variables["nomad/jobs/grafana"]?.admin_password}"`);
    const dashboard = JSON.parse(await rendered("grafana", "grafana", "local/dashboards/cluster.json")) as { uid: string };
    expect(dashboard.uid).toBe("hashistack-cluster");

    // the secrets live in the variables only: not in the registered jobs or their stored sources
    for (const job of ["grafana", "gitlab-runner"]) {
      const stored = JSON.stringify(await nomadDev.management.job(job, platformNamespace));
      expect(stored).not.toContain(runnerToken);
      expect(stored).not.toContain(variables["nomad/jobs/grafana"]?.admin_password);
    }
  });
});
