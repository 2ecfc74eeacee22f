/**
 * Follow a registration to its end with blocking queries: the evaluation, then
 * the deployment (service jobs, and system jobs on Nomad ≥ 1.11) or the allocations (batch jobs).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError } from "../clients/http.ts";
import type { NomadAllocationStub, NomadClient, NomadDeployment, NomadEvaluation, NomadJob } from "../clients/nomad.ts";
import { type AllocationFailure, failingAllocations } from "./failures.ts";
import { placementFailures } from "./plan-summary.ts";

export interface FollowOutcome {
  status: "successful" | "failed" | "timeout";
  message: string;
  deploymentId?: string;
  failures: AllocationFailure[];
  /** "rolled back to version 0" when Nomad auto-reverted */
  autoRevert?: string;
}

export interface FollowOptions {
  jobId: string;
  namespace: string;
  type: NomadJob["Type"];
  version: number | undefined;
  evalId: string;
  deadline: number;
  progress?: (detail: string) => void;
}

class Timeout extends Error {}

function transient(error: unknown): boolean {
  return (
    error instanceof ApiError &&
    (error.status === undefined || [500, 502, 503, 504].includes(error.status)) &&
    !/not found/i.test(error.apiMessage)
  );
}

/** Block on `path` until `done` gives a value; throws Timeout at the deadline. */
async function watch<T, R>(
  nomad: NomadClient,
  path: string,
  namespace: string,
  deadline: number,
  done: (data: T) => R | undefined,
): Promise<R> {
  let index = 0;
  while (Date.now() < deadline) {
    const waitS = Math.max(1, Math.min(30, Math.floor((deadline - Date.now()) / 1000)));
    let result: { data: T; index: number };
    try {
      result = await nomad.api.blockingGet<T>(path, index, `${waitS}s`, { namespace });
    } catch (error) {
      // a leader election or a dropped connection is not the deployment's fault: ask again
      if (!transient(error)) throw error;
      await sleep(1000);
      continue;
    }
    const value = done(result.data);
    if (value !== undefined) return value;
    // an unchanged index would return at once: wait for the next change instead of spinning
    index = result.index;
  }
  throw new Timeout();
}

export async function followRegistration(nomad: NomadClient, options: FollowOptions): Promise<FollowOutcome> {
  const { namespace, deadline } = options;
  let evaluation: NomadEvaluation;
  try {
    evaluation = await watch<NomadEvaluation, NomadEvaluation>(
      nomad,
      `/v1/evaluation/${encodeURIComponent(options.evalId)}`,
      namespace,
      deadline,
      (e) => (e.Status === "pending" ? undefined : e),
    );
  } catch (error) {
    if (error instanceof Timeout)
      return { status: "timeout", message: `evaluation ${options.evalId} still pending`, failures: [] };
    throw error;
  }
  if (evaluation.Status !== "complete") {
    return { status: "failed", message: `evaluation ${evaluation.Status}: ${evaluation.StatusDescription}`, failures: [] };
  }
  const unplaced = placementFailures(evaluation.FailedTGAllocs);
  if (unplaced.length) {
    // the scheduler keeps a blocked evaluation and would retry; CI wants the answer now
    return { status: "failed", message: `placement failed: ${unplaced.join("; ")}`, failures: [] };
  }

  let deploymentId = evaluation.DeploymentID || undefined;
  if (!deploymentId && (options.type === "service" || options.type === "system") && options.version !== undefined) {
    const latest = await nomad.latestDeployment(options.jobId, namespace);
    if (latest && latest.JobVersion === options.version) deploymentId = latest.ID;
  }
  return deploymentId ? followDeployment(nomad, options, deploymentId) : followAllocations(nomad, options, evaluation);
}

async function followDeployment(nomad: NomadClient, options: FollowOptions, deploymentId: string): Promise<FollowOutcome> {
  const { namespace } = options;
  let last: NomadDeployment | undefined;
  let deployment: NomadDeployment;
  try {
    deployment = await watch<NomadDeployment, NomadDeployment>(
      nomad,
      `/v1/deployment/${encodeURIComponent(deploymentId)}`,
      namespace,
      options.deadline,
      (d) => {
        if (!last || progressText(last) !== progressText(d)) options.progress?.(progressText(d));
        last = d;
        return ["successful", "failed", "cancelled"].includes(d.Status) ? d : undefined;
      },
    );
  } catch (error) {
    if (!(error instanceof Timeout)) throw error;
    return {
      status: "timeout",
      deploymentId,
      message: `deployment ${deploymentId} still ${last?.Status ?? "unknown"}${last ? ` (${progressText(last)})` : ""}`,
      failures: failingAllocations(await nomad.deploymentAllocations(deploymentId, namespace), { unsettled: true }),
    };
  }
  if (deployment.Status === "successful") {
    return { status: "successful", deploymentId, message: deployment.StatusDescription, failures: [] };
  }
  const revert = /rolling back to job version (\d+)/i.exec(deployment.StatusDescription);
  return {
    status: "failed",
    deploymentId,
    message: `deployment ${deployment.Status}: ${deployment.StatusDescription}`,
    failures: failingAllocations(await nomad.deploymentAllocations(deploymentId, namespace)),
    autoRevert: revert ? `Nomad rolled back to job version ${revert[1]}` : undefined,
  };
}

/** Jobs without a deployment (batch, sysbatch, or an update block that disables it): watch this version's allocations. */
async function followAllocations(
  nomad: NomadClient,
  options: FollowOptions,
  evaluation: NomadEvaluation,
): Promise<FollowOutcome> {
  const batch = options.type === "batch" || options.type === "sysbatch";
  const mine = (allocs: NomadAllocationStub[]) =>
    allocs.filter(
      (a) =>
        a.DesiredStatus === "run" &&
        (options.version === undefined ? a.EvalID === evaluation.ID : a.JobVersion === options.version),
    );
  let last: NomadAllocationStub[] = [];
  try {
    return await watch<NomadAllocationStub[], FollowOutcome>(
      nomad,
      `/v1/job/${encodeURIComponent(options.jobId)}/allocations`,
      options.namespace,
      options.deadline,
      (all) => {
        const allocs = mine(all);
        last = allocs;
        const failed = allocs.filter((a) => a.ClientStatus === "failed" || a.ClientStatus === "lost");
        if (failed.length) {
          return {
            status: "failed",
            message: `${failed.length} of ${allocs.length} allocation(s) failed`,
            failures: failingAllocations(allocs),
          };
        }
        const finished = batch
          ? allocs.every((a) => a.ClientStatus === "complete")
          : allocs.every(
              (a) =>
                a.ClientStatus === "running" &&
                Object.values(a.TaskStates ?? {}).every((t) => t.State === "running" || isDoneSidecar(t)),
            );
        options.progress?.(
          `${allocs.filter((a) => a.ClientStatus === (batch ? "complete" : "running")).length}/${allocs.length} allocation(s) ${batch ? "complete" : "running"}`,
        );
        if (!finished) return undefined;
        return {
          status: "successful",
          message: allocs.length ? `${allocs.length} allocation(s) ${batch ? "complete" : "running"}` : "no allocations to place",
          failures: [],
        };
      },
    );
  } catch (error) {
    if (!(error instanceof Timeout)) throw error;
    return {
      status: "timeout",
      message: `allocations not ${batch ? "complete" : "running"} yet`,
      failures: failingAllocations(last, { unsettled: true }),
    };
  }
}

/** A prestart task that ran to completion is not a reason to wait. */
function isDoneSidecar(task: { State: string; Failed: boolean }): boolean {
  return task.State === "dead" && !task.Failed;
}

function progressText(d: NomadDeployment): string {
  const groups = Object.entries(d.TaskGroups ?? {}).map(
    ([name, g]) =>
      `${name} ${g.HealthyAllocs}/${g.DesiredTotal} healthy${g.UnhealthyAllocs ? `, ${g.UnhealthyAllocs} unhealthy` : ""}`,
  );
  return `${d.Status}: ${groups.join("; ")}`;
}
