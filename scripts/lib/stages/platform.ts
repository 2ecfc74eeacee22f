/**
 * platform: the enabled platform jobs (Prometheus, Alertmanager, Fabio,
 * Grafana, GitLab Runner, the energy exporter) go through the same code path
 * as `npm run deploy`, into the platform namespace, after their Nomad
 * variables (rules, dashboards, secrets) are in place. A re-run with nothing
 * changed plans every job, finds no difference and registers nothing.
 */
import { runtimeProfile } from "../config/schema.ts";
import { deployJobs, type JobDeployResult } from "../deploy/deploy.ts";
import { OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { platformJobs, platformVariables } from "../platform/jobs.ts";
import { onEachHost } from "../remote/fanout.ts";
import { shellQuote } from "../remote/quote.ts";
import { nomadThroughTunnel, platformNamespace } from "./nomad.ts";
import type { ClusterRun } from "./run-context.ts";

export async function platformStage(run: ClusterRun): Promise<string> {
  const { config, inventory } = run;
  const clients = hostsWithRole(inventory, "client");
  const clientHas = async (path: string) => {
    const outcomes = await onEachHost(clients, (host) => run.remote(host).run(`test -x ${shellQuote(path)}`), {
      concurrency: config.concurrency,
    });
    return outcomes.every((o) => !o.error);
  };
  const jobs = await platformJobs(config, run.secrets, clientHas);
  for (const job of jobs.filter((j) => j.skipped)) run.reporter.warn(`${job.name} is not deployed: ${job.skipped}`);
  const deployable = jobs.filter((j) => !j.skipped);
  if (!deployable.length) return "no platform jobs enabled";

  const variables = await platformVariables(config, inventory, run.secrets, jobs);
  const token = await run.secrets.read("nomad-bootstrap-token");
  const server = hostsWithRole(inventory, "server")[0] as InventoryHost;
  const { nomad, tunnel } = await nomadThroughTunnel(run, server, token);
  const changed: string[] = [];
  let results: JobDeployResult[];
  try {
    for (const [path, items] of Object.entries(variables)) {
      if (await nomad.upsertVariable(platformNamespace, path, items)) changed.push(`variable ${path}`);
    }
    const runtime = runtimeProfile(config);
    const exporter = deployable.find((j) => j.name === "energy-exporter");
    const others = deployable.filter((j) => j !== exporter);
    const common = { timeoutMs: 300_000, concurrency: 6 };
    results = [
      ...(others.length
        ? await deployJobs(nomad, { ...common, files: others.map((j) => j.file), variables: { runtime } }, run.reporter)
        : []),
      ...(exporter
        ? await deployJobs(
            nomad,
            {
              ...common,
              files: [exporter.file],
              variables: {
                runtime,
                carbon_region: config.jobs.energyExporter.carbonRegion,
                pue: String(config.jobs.energyExporter.pue),
              },
            },
            run.reporter,
          )
        : []),
    ];
  } finally {
    await tunnel.close();
  }
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
