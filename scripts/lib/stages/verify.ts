/** verify: the health summary after a bootstrap; any problem fails the run with the list. */
import { OperationError } from "../errors.ts";
import { clusterHealth } from "./health.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";

export const verifyStage: Stage = {
  name: "verify",
  description: "the health summary; any problem fails the run",
  run: runVerify,
};

async function runVerify(run: ClusterRun): Promise<string> {
  const health = await clusterHealth(run);
  if (health.problems.length) {
    throw new OperationError(
      `The cluster is not healthy (${health.problems.length} problem${health.problems.length === 1 ? "" : "s"}).`,
      {
        details: health.problems,
        hint: "Run 'npm run status' for the full picture; re-running bootstrap repairs what it can.",
      },
    );
  }
  const soonest = Math.min(...health.certificates.map((c) => c.hoursLeft ?? Number.POSITIVE_INFINITY));
  const soonestText = soonest >= 1 ? `${Math.floor(soonest)} h` : `${Math.round(soonest * 60)} min`;
  const ready = health.nomad.nodes.filter((n) => n.status === "ready").length;
  const skipped = run.skipped.length ? `; skipped (unreachable): ${run.skipped.map((h) => h.name).join(", ")}` : "";
  return `${health.consul.members.length} Consul members, ${health.consul.peers} raft peers; ${ready} Nomad clients ready, ${health.nomad.peers} servers; Vault unsealed; certificates valid ≥ ${soonestText}${health.nomad.jobs.length ? `; ${health.nomad.jobs.length} platform jobs running` : ""}${skipped}`;
}
