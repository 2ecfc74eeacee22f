/**
 * `deploy` against a real Nomad dev agent (server + client) with ACLs on, on
 * its own loopback address and ports, raw_exec enabled so real tasks run and a
 * Nomad-native HTTP check decides health. Jobs are deployed with a token that
 * carries the same ci-deploy policy bootstrap creates.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { ApiError } from "../../../scripts/lib/clients/http.ts";
import { NomadClient } from "../../../scripts/lib/clients/nomad.ts";
import { deployJobs, type DeployRequest } from "../../../scripts/lib/deploy/deploy.ts";
import { deployExitCode } from "../../../scripts/lib/deploy/exit-code.ts";
import { diagnoseFailures } from "../../../scripts/lib/deploy/failures.ts";
import { managedByKey, parseJobFile } from "../../../scripts/lib/deploy/parse.ts";
import { summarizePlan } from "../../../scripts/lib/deploy/plan-summary.ts";
import { loadVariables, renderVariables } from "../../../scripts/lib/deploy/variables.ts";
import { registerJob } from "../../../scripts/lib/deploy/register.ts";
import { InputError, OperationError } from "../../../scripts/lib/errors.ts";
import { ciDeployPolicy } from "../../../scripts/lib/cluster/nomad-acl.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type NomadDev, startNomadDev } from "../../helpers/nomad-dev.ts";

const ip = "127.0.0.70";
const address = `http://${ip}:14646`;
const bootstrapSecret = "70707070-0000-4000-8000-000000000070";
const python = "/usr/bin/python3";

let dir: Awaited<ReturnType<typeof tempDir>>;
let nomadDev: NomadDev;
let management: NomadClient;
let ci: NomadClient;
let ciToken: string;

/** A web server task with a Nomad-native HTTP check on `checkPath`. */
function webJob(name: string, options: { checkPath?: string; greeting?: string; declare?: string } = {}): string {
  return `
variable "greeting" {
  type    = string
  default = "hello"
}
${options.declare ?? ""}
job "${name}" {
  datacenters = ["*"]
  meta {
    greeting = var.greeting
  }
  update {
    min_healthy_time  = "1s"
    healthy_deadline  = "5s"
    progress_deadline = "8s"
    auto_revert       = true
  }
  group "web" {
    network {
      port "http" {}
    }
    service {
      name     = "${name}"
      provider = "nomad"
      port     = "http"
      check {
        type     = "http"
        path     = "${options.checkPath ?? "/"}"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "server" {
      driver = "raw_exec"
      config {
        command = "${python}"
        args    = ["-m", "http.server", "--bind", "\${NOMAD_IP_http}", "\${NOMAD_PORT_http}"]
      }
      resources {
        cpu    = 20
        memory = 32
      }
    }
  }
}
`;
}

async function jobFile(name: string, text: string): Promise<string> {
  const path = join(dir.path, name);
  await writeFile(path, text);
  return path;
}

const request = (files: string[], extra: Partial<DeployRequest> = {}): DeployRequest => ({
  files,
  namespace: "dev",
  timeoutMs: 60_000,
  ...extra,
});

beforeAll(async () => {
  if (!existsSync(python)) throw new Error(`${python} is needed for the test web server (apt-get install python3).`);
  dir = await tempDir("deploy");
  nomadDev = await startNomadDev({ ip, httpPort: 14646, bootstrapSecret });
  management = nomadDev.management;
  await management.upsertNamespace({ Name: "dev", Description: "dev workloads" });
  await management.upsertNamespace({ Name: "prod", Description: "prod workloads" });
  await management.upsertPolicy("ci-deploy-dev", "CI deploys to dev", ciDeployPolicy("dev"));
  ciToken = (await management.createToken({ Name: "ci", Type: "client", Policies: ["ci-deploy-dev"] })).SecretID;
  ci = new NomadClient({ address, token: ciToken });
});

afterAll(async () => {
  await nomadDev?.stop();
  await dir?.remove();
});

describe("deploy against a real Nomad agent, with the CI token", () => {
  it("deploys a new service job and waits for a healthy deployment", async () => {
    const file = await jobFile("web.nomad.hcl", webJob("web"));
    const reporter = createRecordingReporter();
    const started = Date.now();
    const [result] = await deployJobs(ci, request([file], { variables: { greeting: 'say "hi" ${not-a-template}' } }), reporter);
    console.log(`deploy of a new service job to healthy: ${Date.now() - started} ms`);
    expect(result?.error).toBeUndefined();
    expect(result).toMatchObject({ jobId: "web", namespace: "dev", outcome: "deployed", version: 0 });
    expect(result?.plan?.diffType).toBe("Added");
    expect(result?.deploymentId).toBeTruthy();
    const job = await management.job("web", "dev");
    // the marker is set, and the literal --var value arrives unchanged (quotes kept, no interpolation)
    expect(job?.Meta).toEqual({ greeting: 'say "hi" ${not-a-template}', [managedByKey]: "hashistack-deploy" });
    const deployment = await management.deployment(result?.deploymentId as string, "dev");
    expect(deployment.Status).toBe("successful");
    // the job source is stored as the submission
    const submission = await management.api.get<{ Source: string; Format: string; VariableFlags: Record<string, string> }>(
      "/v1/job/web/submission",
      { namespace: "dev", version: 0 },
    );
    expect(submission.Format).toBe("hcl2");
    expect(submission.Source).toContain('job "web"');
    expect(submission.VariableFlags).toEqual({ greeting: 'say "hi" ${not-a-template}' });
    expect(reporter.messages.map((m) => m.text)).toContain('job "web": new job');
  });

  it("a re-deploy of the same file and values says 'no changes' and registers no new version", async () => {
    const file = join(dir.path, "web.nomad.hcl");
    const reporter = createRecordingReporter();
    const started = Date.now();
    const [result] = await deployJobs(ci, request([file], { variables: { greeting: 'say "hi" ${not-a-template}' } }), reporter);
    console.log(`no-op re-deploy: ${Date.now() - started} ms`);
    expect(result?.outcome).toBe("unchanged");
    expect(result?.evalId).toBeUndefined();
    expect(reporter.messages.map((m) => m.text)).toContain('job "web": no changes');
    expect((await management.job("web", "dev"))?.Version).toBe(0);
  });

  it("--dry-run shows the diff and exits 5 without registering", async () => {
    const file = join(dir.path, "web.nomad.hcl");
    const reporter = createRecordingReporter();
    const results = await deployJobs(ci, request([file], { dryRun: true, variables: { greeting: "changed" } }), reporter);
    expect(results[0]?.outcome).toBe("changes-pending");
    expect(reporter.messages.map((m) => m.text)).toContain('    ~ Meta[greeting]: "say \\"hi\\" ${not-a-template}" => "changed"');
    expect(deployExitCode(results, { dryRun: true })).toBe(5);
    expect((await management.job("web", "dev"))?.Version).toBe(0);
  });

  it("a failing health check fails the deployment, shows the task events and reports the auto-revert", async () => {
    const file = await jobFile("web-broken.nomad.hcl", webJob("web", { checkPath: "/no-such-page" }));
    const reporter = createRecordingReporter();
    const started = Date.now();
    const results = await deployJobs(ci, request([file], { variables: { greeting: "broken" } }), reporter);
    console.log(`failing deployment detected: ${Date.now() - started} ms`);
    const [result] = results;
    expect(result?.outcome).toBe("failed");
    expect(deployExitCode(results, { dryRun: false })).toBe(3);
    expect(result?.error?.message).toMatch(/^job "web" \(dev\) failed: deployment failed: Failed due to/);
    expect(result?.autoRevert).toBe("Nomad rolled back to job version 0");
    expect(result?.failures.length).toBeGreaterThan(0);
    expect(result?.failures[0]?.healthy).toBe(false);
    expect(result?.failures[0]?.tasks[0]?.events.map((e) => e.type)).toContain("Started");
    // the report is the error's details: the allocation, its task's events and log tails
    const details = result?.error?.details.join("\n") ?? "";
    expect(details).toMatch(/allocation [0-9a-f]{8} \(web\.web\[0\]\) on .*: running, unhealthy/);
    expect(details).toMatch(/ {4}\d\d:\d\d:\d\d Started: Task started by client/);
    expect(details).toMatch(/stderr \(last \d+ lines?\):\n/);
    expect(details).toMatch(/ {6}\| .*"GET \/no-such-page HTTP\/1\.[01]" 404/);
    expect(reporter.messages.map((m) => m.text).join("\n")).toContain("Nomad rolled back to job version 0");
    // the rollback registers the old job again as a new version
    await expect
      .poll(async () => (await management.job("web", "dev"))?.Meta?.greeting, { timeout: 10_000 })
      .toBe('say "hi" ${not-a-template}');
  });

  it("a task that crashes: the report names the allocation with its events, the last lines of stderr and stdout, and the agent's log", async () => {
    // 30 numbered lines on each stream, then exit 3; no restarts and no reschedule, so the deployment fails at once
    const file = await jobFile(
      "crash.nomad.hcl",
      `job "crash" {
  datacenters = ["*"]
  update {
    min_healthy_time  = "1s"
    healthy_deadline  = "20s"
    progress_deadline = "30s"
  }
  group "crash" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "boom" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "for i in $(seq 1 30); do echo \\"out $i\\"; echo \\"err $i\\" >&2; done; exit 3"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`,
    );
    const asked: string[] = [];
    const started = Date.now();
    const [result] = await deployJobs(
      ci,
      request([file], {
        agentLog: async (failure) => {
          asked.push(failure.node);
          const lines = nomadDev
            .log()
            .split("\n")
            .filter((l) => l.includes(failure.allocId));
          return { lines: lines.slice(-5), source: "dev agent log" };
        },
      }),
      createRecordingReporter(),
    );
    console.log(`crashing task detected and described: ${Date.now() - started} ms`);
    expect(result?.outcome).toBe("failed");
    const failure = result?.failures[0];
    expect(failure?.clientStatus).toBe("failed");
    expect(failure?.tasks[0]).toMatchObject({ task: "boom", state: "dead", failed: true });
    expect(failure?.tasks[0]?.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["Started", "Terminated", "Not Restarting"]),
    );
    // the last 20 lines of each stream, in order
    expect(failure?.tasks[0]?.logs?.stdout).toEqual(Array.from({ length: 20 }, (_, i) => `out ${i + 11}`));
    expect(failure?.tasks[0]?.logs?.stderr).toEqual(Array.from({ length: 20 }, (_, i) => `err ${i + 11}`));
    expect(asked).toEqual([failure?.node]);
    const details = result?.error?.details ?? [];
    expect(details[0]).toMatch(/^allocation [0-9a-f]{8} \(crash\.crash\[0\]\) on .+: failed/);
    expect(details).toContain('  task "boom" dead (failed)');
    expect(details.join("\n")).toMatch(/Terminated: Exit Code: 3/);
    expect(details).toContain("    stderr (last 20 lines):");
    expect(details).toContain("      | err 30");
    expect(details).toContain("    stdout (last 20 lines):");
    expect(details).toContain("      | out 11");
    expect(details).toContain("  dev agent log:");
    expect(details.filter((l) => l.startsWith("    | ")).length).toBeGreaterThan(0);
    // the CI token may not read nodes: the report goes without node events rather than failing
    expect(failure?.nodeEvents).toBeUndefined();

    // with a token that may read nodes the node's events are there too; 0 log lines reads no logs
    const bare = (result?.failures ?? []).map((f) => ({ ...f, tasks: f.tasks.map(({ logs: _, ...t }) => t) }));
    const [withNode] = await diagnoseFailures(management, bare, { namespace: "dev", logLines: 0 });
    expect(withNode?.nodeEvents?.[0]).toBe("status ready");
    expect(withNode?.tasks[0]?.logs).toBeUndefined();
  });

  it("var files and flags reach Nomad with the right values: later files win, flags win, escapes survive", async () => {
    const file = "vars.nomad.hcl";
    const extra = webJob("vars", { declare: 'variable "count" {\n  type    = number\n  default = 1\n}' }).replace(
      'group "web" {',
      'group "web" {\n    count = var.count',
    );
    const a = await jobFile("a.vars.hcl", 'greeting = "from a"\ncount = 3\n');
    const b = await jobFile("b.vars.hcl", 'greeting = "from \\"b\\" $${lit} back\\\\slash"\n');
    const fromFiles = await loadVariables([a, b], {});
    const parsedFiles = await parseJobFile(ci, file, extra, renderVariables(fromFiles), "dev");
    expect(parsedFiles.job.Meta?.greeting).toBe('from "b" ${lit} back\\slash');
    expect(parsedFiles.job.TaskGroups?.[0]?.Count).toBe(3);
    const withFlags = await loadVariables([a, b], { count: "2", greeting: "flag %{ wins }" });
    const parsedFlags = await parseJobFile(ci, file, extra, renderVariables(withFlags), "dev");
    expect(parsedFlags.job.Meta?.greeting).toBe("flag %{ wins }");
    expect(parsedFlags.job.TaskGroups?.[0]?.Count).toBe(2);
  });

  it("check-and-set: a job registered between plan and register is not overwritten", async () => {
    const file = await jobFile("cas.nomad.hcl", webJob("cas"));
    const first = await deployJobs(ci, request([file], { detach: true }), createRecordingReporter());
    expect(first[0]?.outcome).toBe("registered");
    expect(first[0]?.evalId).toMatch(/^[0-9a-f-]{36}$/);
    // plan a change …
    const parsed = await parseJobFile(ci, file, await $`cat ${file}`.quiet().then((r) => r.stdout), 'greeting = "mine"\n', "dev");
    const plan = summarizePlan(await ci.planJob(parsed.job));
    expect(plan.changes).toBe(true);
    // … someone else registers meanwhile …
    await deployJobs(ci, request([file], { detach: true, variables: { greeting: "theirs" } }), createRecordingReporter());
    // … and registering with the plan's index is refused with a clear error
    const error = (await registerJob(ci, parsed, plan.jobModifyIndex, { variables: "", flags: {} }).catch(
      (e: unknown) => e,
    )) as OperationError;
    expect(error).toBeInstanceOf(OperationError);
    expect(error.message).toBe(`Job 'cas' in namespace dev changed after it was planned; not registering (${file}).`);
    expect(error.hint).toContain("re-run the deploy");
    expect((await management.job("cas", "dev"))?.Meta?.greeting).toBe("theirs");
  });

  it("refuses to overwrite a job without the marker unless --force", async () => {
    const file = await jobFile("foreign.nomad.hcl", webJob("foreign"));
    // registered by someone else (the plain API, no marker)
    const foreign = await management.parseJob({ JobHCL: webJob("foreign"), Canonicalize: true });
    foreign.Namespace = "dev";
    await management.registerJob({ Job: foreign });
    const refused = await deployJobs(ci, request([file], { variables: { greeting: "ours" } }), createRecordingReporter());
    expect(refused[0]?.outcome).toBe("failed");
    expect(refused[0]?.error?.message).toBe(
      `Job 'foreign' in namespace dev exists and is not managed by hashistack-deploy (no meta ${managedByKey}); not overwriting it (${file}).`,
    );
    expect(refused[0]?.error?.hint).toContain("--force");
    expect(deployExitCode(refused, { dryRun: false })).toBe(3);
    expect((await management.job("foreign", "dev"))?.Meta?.greeting).toBe("hello");

    const forced = await deployJobs(
      ci,
      request([file], { force: true, detach: true, variables: { greeting: "ours" } }),
      createRecordingReporter(),
    );
    expect(forced[0]?.outcome).toBe("registered");
    expect((await management.job("foreign", "dev"))?.Meta).toMatchObject({
      greeting: "ours",
      [managedByKey]: "hashistack-deploy",
    });
  });

  it("bad job files are input errors naming file, line and variable; nothing is registered", async () => {
    const good = await jobFile("good.nomad.hcl", webJob("good"));
    const syntax = await jobFile("syntax.nomad.hcl", 'job "broken" {\n  datacenters = \n}\n');
    const error = (await deployJobs(ci, request([good, syntax]), createRecordingReporter()).catch(
      (e: unknown) => e,
    )) as InputError;
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(`${syntax} is not a valid job file.`);
    expect(error.details[0]).toMatch(new RegExp(`^${syntax}:2:\\d+: Invalid expression`));
    expect(await management.job("good", "dev")).toBeUndefined();

    const typo = (await deployJobs(ci, request([good], { variables: { greting: "x" } }), createRecordingReporter()).catch(
      (e: unknown) => e,
    )) as InputError;
    expect(typo).toBeInstanceOf(InputError);
    expect(typo.message).toBe("Unknown variable 'greting': no job file declares it.");

    const undeclared = await jobFile("undeclared.nomad.hcl", webJob("undeclared").replace("var.greeting", "var.missing"));
    const missing = (await deployJobs(ci, request([undeclared]), createRecordingReporter()).catch(
      (e: unknown) => e,
    )) as InputError;
    expect(missing).toBeInstanceOf(InputError);
    expect(missing.details.join("\n")).toMatch(
      new RegExp(`${undeclared}:\\d+:\\d+: Unsupported attribute; This object does not have an attribute named "missing"`),
    );

    const invalid = await jobFile("invalid.nomad.hcl", webJob("invalid").replace("memory = 32", "memory = 1"));
    const validation = (await deployJobs(ci, request([invalid]), createRecordingReporter()).catch(
      (e: unknown) => e,
    )) as InputError;
    expect(validation).toBeInstanceOf(InputError);
    expect(validation.message).toBe(`${invalid}: job 'invalid' is not valid.`);
    expect(validation.details.join("\n")).toContain("minimum MemoryMB value is 10; got 1");
  });

  it("a job no node can place fails at once, naming the exhausted resource", async () => {
    const file = await jobFile("huge.nomad.hcl", webJob("huge").replace("memory = 32", "memory = 900000"));
    const reporter = createRecordingReporter();
    const [result] = await deployJobs(ci, request([file]), reporter);
    expect(result?.outcome).toBe("failed");
    expect(result?.plan?.placementFailures[0]).toMatch(
      /^group "web": cannot place 1 allocation\(s\) — 1 node\(s\) evaluated; memory exhausted/,
    );
    expect(result?.error?.message).toContain("placement failed");
  });

  it("the CLI end to end through NOMAD_ADDR/NOMAD_TOKEN: dry run exits 5, a batch job deploys, JSON on stdout", async () => {
    const file = await jobFile(
      "once.nomad.hcl",
      `job "once" {
  type = "batch"
  datacenters = ["*"]
  group "once" {
    task "echo" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo done"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`,
    );
    const env = { ...process.env, NOMAD_ADDR: address, NOMAD_TOKEN: ciToken, NOMAD_NAMESPACE: "dev" };
    const cli = (args: string[]) => $({ nothrow: true, quiet: true, env })`npx --no-install tsx scripts/deploy.ts ${args}`;
    const dry = await cli(["--dry-run", file]);
    expect(dry.exitCode, dry.stderr).toBe(5);
    expect(dry.stdout).toContain('job "once": new job');
    const run = await cli(["--output", "json", "--timeout", "60s", file]);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { exitCode: number; jobs: { jobId: string; outcome: string; type: string }[] };
    expect(report).toMatchObject({ exitCode: 0, jobs: [{ jobId: "once", outcome: "deployed", type: "batch" }] });
    // the token never reaches the output
    expect(run.stdout + run.stderr + dry.stdout + dry.stderr).not.toContain(ciToken);
  });

  it("a system job whose task fails three starts: fatal with a fail-mode restart policy, survived with delay mode (jobs/README.md)", async () => {
    // the platform's system jobs (fabio, energy-exporter) have no reschedule: the first
    // unhealthy allocation fails the deployment, so a task failing at start must be restarted
    const flaky = (name: string, restart: string) =>
      jobFile(
        `${name}.nomad.hcl`,
        `job "${name}" {
  type        = "system"
  datacenters = ["*"]
  update {
    min_healthy_time  = "1s"
    healthy_deadline  = "40s"
    progress_deadline = "50s"
  }
  group "flaky" {
    restart {
${restart}
    }
    task "start" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        # exits 1 on its first three starts (the count survives restarts in the alloc dir), then runs
        args    = ["-c", "f=$NOMAD_ALLOC_DIR/starts; n=$(( $(cat $f 2>/dev/null || echo 0) + 1 )); echo $n > $f; echo start $n >&2; [ $n -gt 3 ] || exit 1; exec sleep 3600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`,
      );
    // Nomad's default for system jobs is 2 attempts in 30m, mode "fail" (delay 15s; 1s here)
    const fail = await flaky(
      "flaky-fail",
      '      attempts = 2\n      interval = "30m"\n      delay    = "1s"\n      mode     = "fail"',
    );
    const delay = await flaky(
      "flaky-delay",
      '      attempts = 3\n      interval = "1m"\n      delay    = "1s"\n      mode     = "delay"',
    );
    const started = Date.now();
    const [failed, survived] = await deployJobs(ci, request([fail, delay], { concurrency: 2 }), createRecordingReporter());
    console.log(`flaky system jobs: ${Date.now() - started} ms`);
    expect(failed?.outcome).toBe("failed");
    expect(failed?.error?.message).toBe('job "flaky-fail" (dev) failed: deployment failed: Failed due to unhealthy allocations');
    expect(failed?.error?.details).toContain('  task "start" dead (failed), 2 restarts');
    expect(failed?.error?.details).toContain("      | start 3");
    expect(survived?.error).toBeUndefined();
    expect(survived?.outcome).toBe("deployed");
    const [alloc] = await management.jobAllocations("flaky-delay", "dev");
    expect(alloc?.TaskStates?.start?.Restarts).toBe(3);
  });

  it("deploys a directory of jobs in parallel: a system job runs on every node, a service job gets healthy", async () => {
    const jobsDir = join(dir.path, "set");
    await $`mkdir -p ${jobsDir}`;
    await writeFile(join(jobsDir, "a-web.nomad.hcl"), webJob("set-web"));
    await writeFile(
      join(jobsDir, "b-agent.nomad"),
      `job "set-agent" {
  type        = "system"
  datacenters = ["*"]
  update {
    min_healthy_time = "1s"
  }
  group "agent" {
    task "sleep" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`,
    );
    const reporter = createRecordingReporter();
    const results = await deployJobs(ci, request([jobsDir], { concurrency: 2 }), reporter);
    expect(results.map((r) => [r.file, r.jobId, r.type, r.outcome])).toEqual([
      [join(jobsDir, "a-web.nomad.hcl"), "set-web", "service", "deployed"],
      [join(jobsDir, "b-agent.nomad"), "set-agent", "system", "deployed"],
    ]);
    // (Nomad 1.11 gives system jobs deployments too; batch jobs, without one, are covered by the CLI test)
    const allocs = await management.jobAllocations("set-agent", "dev");
    expect(allocs.map((a) => a.ClientStatus)).toEqual(["running"]);
    expect(deployExitCode(results, { dryRun: false })).toBe(0);
  });

  it("--timeout: a deployment still in progress at the deadline fails with exit 3 and says what it was waiting for", async () => {
    const file = await jobFile("slow.nomad.hcl", webJob("slow", { checkPath: "/never-healthy" }));
    const started = Date.now();
    const results = await deployJobs(ci, request([file], { timeoutMs: 3_000 }), createRecordingReporter());
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(results[0]?.outcome).toBe("failed");
    expect(results[0]?.error?.message).toMatch(
      /^job "slow" \(dev\) did not finish in time: deployment [0-9a-f-]{36} still running/,
    );
    // what it waited for: the allocation still running without a health verdict, with its task's events
    expect(results[0]?.error?.details[0]).toMatch(/^allocation [0-9a-f]{8} \(slow\.web\[0\]\) on .+: (running|pending)/);
    expect(deployExitCode(results, { dryRun: false })).toBe(3);
  });

  it.each(["default", "prod"])("the dev CI token cannot deploy to %s: a clear permission error", async (namespace) => {
    const file = join(dir.path, "web.nomad.hcl");
    const error = (await deployJobs(ci, request([file], { namespace }), createRecordingReporter()).catch(
      (e: unknown) => e,
    )) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(403);
    expect(error.hint).toContain("token");
    expect(await management.job("web", namespace)).toBeUndefined();
  });
});
