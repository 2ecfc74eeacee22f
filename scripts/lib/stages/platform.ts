/**
 * platform: the enabled platform jobs (Prometheus, Alertmanager, Fabio,
 * Grafana, GitLab Runner, the energy exporter) go through the same code path
 * as `npm run deploy`, into the platform namespace, after their Nomad
 * variables (rules, dashboards, secrets) are in place. A re-run that would send
 * exactly what the last deployment sent, to jobs and variables nobody changed
 * since (platform/deployed-record.ts), skips parsing and planning; otherwise every
 * job is planned, and only those with a difference are registered.
 */
import { readFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { runtimeProfile } from "../config/schema.ts";
import { deployJobs, type JobDeployResult } from "../deploy/deploy.ts";
import type { AllocationFailure } from "../deploy/failures.ts";
import { buildExporterBundle } from "../build/exporter-bundle.ts";
import { withNomad } from "../cluster/access.ts";
import { type AgentLog, nomadAgentLog } from "../cluster/agent-log.ts";
import { ensureClientToken, platformNamespace } from "../cluster/nomad-acl.ts";
import { minimalPolicy } from "../energy/acl.ts";
import { OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { imageVariables } from "../images/references.ts";
import {
  currentIndexes,
  platformDigest,
  readDeployedRecord,
  unchangedSinceRecord,
  writeDeployedRecord,
} from "../platform/deployed-record.ts";
import { platformJobs, platformVariables } from "../platform/jobs.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { sh } from "../remote/command.ts";
import { readBuiltImages } from "../images/state.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";

export const platformStage: Stage = {
  name: "platform",
  description: "the platform jobs (Prometheus, Alertmanager, Fabio, Grafana, GitLab Runner, energy exporter)",
  shouldRun: platformHasWork,
  run: runPlatform,
};

/** Skips the stage when no job is enabled, or when there is no Nomad client for the jobs to run on. */
function platformHasWork(run: ClusterRun): true | string {
  const { jobs } = run.config;
  const enabled = [jobs.prometheus, jobs.alertmanager, jobs.fabio, jobs.grafana, jobs.gitlabRunner, jobs.energyExporter];
  if (!enabled.some((j) => j.enabled)) return "no platform jobs enabled";
  if (!hostsWithRole(run.inventory, "client").length) {
    run.reporter.warn("The topology has no Nomad clients: the platform jobs have nowhere to run and are not deployed.");
    return "no Nomad clients: platform jobs not deployed";
  }
  return true;
}

async function runPlatform(run: ClusterRun): Promise<string> {
  const { config, inventory } = run;
  const clients = hostsWithRole(inventory, "client");
  const clientHas = async (path: string) => {
    const outcomes = await onEachHost(clients, (host) => run.remote(host).run(sh`test -x ${path}`), {
      concurrency: config.concurrency,
    });
    return outcomes.every((o) => !o.error);
  };
  const jobs = await platformJobs(config, run.secrets, clientHas);
  for (const job of jobs.filter((j) => j.skipped)) run.reporter.warn(`${job.name} is not deployed: ${job.skipped}`);
  const deployable = jobs.filter((j) => !j.skipped);
  if (!deployable.length) return "no platform jobs enabled";

  const variables = await platformVariables(config, inventory, run.secrets, jobs);
  const changed: string[] = [];
  const exporter = deployable.find((j) => j.name === "energy-exporter");
  if (exporter && runtimeProfile(config) === "exec") {
    const uploaded = await shipExporterBundle(run, clients);
    if (uploaded) changed.push(`exporter bundle on ${uploaded} clients`);
  }
  const token = await run.secrets.read("nomad-bootstrap-token");
  const server = hostsWithRole(inventory, "server")[0] as InventoryHost;
  const results: JobDeployResult[] = await withNomad(
    run,
    server,
    async (nomad) => {
      if (exporter) {
        // the exporter names tasks through the local agent: a token that may only read jobs
        if (await nomad.upsertPolicy("energy-exporter", "Energy exporter: read allocations", minimalPolicy))
          changed.push("energy-exporter policy");
        const exporterToken = await ensureClientToken(run, nomad, "nomad-energy-exporter-token", "energy-exporter", [
          "energy-exporter",
        ]);
        variables["nomad/jobs/energy-exporter"] = { token: exporterToken.token };
      }
      const runtime = runtimeProfile(config);
      const images =
        runtime === "docker"
          ? await imageVariables(
              config,
              deployable.map((j) => j.name),
              await readBuiltImages(run.state),
            )
          : {};
      // the jobs declare different variables (the exporter's own, an image per job): one request per job
      const perJobVariables = deployable.map((job) => {
        const jobVariables: Record<string, string> = {
          runtime,
          ...(images[job.name] ? { image: images[job.name] as string } : {}),
        };
        if (job === exporter) {
          Object.assign(jobVariables, {
            region: config.region,
            carbon_region: config.jobs.energyExporter.carbonRegion,
            pue: String(config.jobs.energyExporter.pue),
          });
        }
        return jobVariables;
      });
      // nothing changed since the last deployment: no parse or plan (deployed-record.ts)
      const digest = platformDigest({
        nomadVersion: config.versions.nomad,
        namespace: platformNamespace,
        jobs: await Promise.all(
          deployable.map(async (job, i) => ({
            name: job.name,
            source: await readFile(job.file, "utf8"),
            variables: perJobVariables[i] as Record<string, string>,
          })),
        ),
        variables,
        extra: exporter ? { exporterPolicy: minimalPolicy } : {},
      });
      const paths = Object.keys(variables);
      const recordFile = deployedRecordFile(run);
      const recorded = await readDeployedRecord(recordFile);
      if (await unchangedSinceRecord(nomad, platformNamespace, recorded, digest, { jobCount: deployable.length, paths })) {
        run.reporter.debug("platform: the jobs and variables are as last deployed; not planned again");
        return deployable.map((job) => unchangedResult(job.file, job.name));
      }
      for (const [path, items] of Object.entries(variables)) {
        if (await nomad.upsertVariable(platformNamespace, path, items)) changed.push(`variable ${path}`);
      }
      const common = {
        timeoutMs: 300_000,
        concurrency: 6,
        // a failed allocation's report carries its client's Nomad agent log, read over SSH
        agentLog: (failure: AllocationFailure) => clientAgentLog(run, failure.node, failure.allocId),
      };
      const perJob = await Promise.all(
        deployable.map((job, i) =>
          deployJobs(nomad, { ...common, files: [job.file], variables: perJobVariables[i] }, run.reporter),
        ),
      );
      const outcomes = perJob.flat();
      // recorded only after every job is deployed (or unchanged): a failure always takes the full path again
      if (outcomes.every((r) => r.outcome === "deployed" || r.outcome === "unchanged")) {
        const jobIds = outcomes.map((r) => r.jobId);
        const now = await currentIndexes(nomad, platformNamespace, jobIds, paths);
        if (Object.keys(now.jobs).length === jobIds.length && Object.keys(now.variables).length === paths.length)
          await writeDeployedRecord(recordFile, { digest, ...now });
      }
      return outcomes;
    },
    { token },
  );
  const failed = results.filter((r) => r.outcome === "failed");
  if (failed.length) {
    throw new OperationError(`${failed.length} platform job${failed.length > 1 ? "s" : ""} did not become healthy.`, {
      details: failed.flatMap((r) => [
        `${r.jobId}: ${r.error?.message ?? r.message ?? "failed"}`,
        ...(r.error?.details ?? []).map((d) => `  ${d}`),
      ]),
      hint: "Fix the cause above and run bootstrap again (or `npm run deploy -- jobs/<job>.nomad.hcl`); finished stages are skipped quickly.",
    });
  }
  const deployed = results.filter((r) => r.outcome === "deployed").map((r) => r.jobId);
  if (deployed.length) changed.push(`deployed ${deployed.join(", ")}`);
  const unchanged = results.filter((r) => r.outcome === "unchanged").length;
  return changed.length ? `${changed.join("; ")}${unchanged ? `; ${unchanged} unchanged` : ""}` : "no changes";
}

/** Where the platform stage records its last deployment (deployed-record.ts). */
export function deployedRecordFile(run: Pick<ClusterRun, "state">): string {
  return join(run.state.root, "platform-deployed.json");
}

function unchangedResult(file: string, jobId: string): JobDeployResult {
  return {
    file,
    jobId,
    namespace: platformNamespace,
    type: "service",
    outcome: "unchanged",
    message: "no changes since the last deployment",
    warnings: [],
    failures: [],
    durationMs: 0,
  };
}

/** The Nomad agent's log on the client named `node`, when it is one of ours. */
async function clientAgentLog(run: ClusterRun, node: string, allocId: string): Promise<AgentLog | undefined> {
  const host = run.inventory.hosts.find((h) => h.name === node);
  return host ? nomadAgentLog(run.remote(host), allocId) : undefined;
}

/** Where the exec profile's exporter job expects its bundle (jobs/energy-exporter.nomad.hcl, exporter_js). */
export const exporterBundlePath = "/opt/hashistack/energy-exporter/energy-exporter.mjs";

/** Build the exporter bundle (reproducible, about a second) and put it on every client; returns how many changed. */
async function shipExporterBundle(run: ClusterRun, clients: InventoryHost[]): Promise<number> {
  const bundle = await buildExporterBundle();
  const outcomes = await onEachHost(
    clients,
    async (host) => {
      const remote = run.remote(host);
      await remote.mkdir({ path: posix.dirname(exporterBundlePath), mode: 0o755 });
      return remote.uploadFile(bundle.file, exporterBundlePath, { mode: 0o644 });
    },
    { concurrency: run.config.concurrency },
  );
  return requireAllSucceeded("shipping the energy exporter", outcomes).filter((o) => o !== "unchanged").length;
}
