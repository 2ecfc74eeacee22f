/**
 * Rolling restarts that a stopped run can resume (the journal is
 * state/rollout-journal.ts): a host is recorded before its agent's files are
 * written, the planned order before the first restart, each step once it is
 * healthy again. A re-run restarts the hosts a stopped run left, first and even
 * where their files are already current, then whatever changed since; a failure
 * names where the rollout stopped and what a re-run will restart.
 */
import { isUserError, OperationError } from "../errors.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import type { StatePaths } from "../state/paths.ts";
import { RolloutJournal } from "../state/rollout-journal.ts";
import { plannedOrder, rollClients, type Rollout, type RolloutStep, rollServers } from "./rolling.ts";

export interface ResumableRollout {
  /** hosts a stopped run left unrestarted (in its planned order) */
  readonly left: string[];
  /** whether `host`'s agent restarts to finish a stopped rollout, whatever its files */
  isLeft(host: InventoryHost): boolean;
  /** record `host` before its agent's files are written */
  writing(host: InventoryHost): Promise<void>;
  /** agents that run their new files: started (they were not running), or reloaded outside a rollout */
  done(hosts: InventoryHost[]): Promise<void>;
  /** every host runs its new files: the journal forgets them */
  finish(): Promise<void>;
  /**
   * Restart `pending` in the rollout's order, those a stopped run left first;
   * each step is recorded once healthy, and the journal forgets `hosts` when all are done.
   */
  restart(pending: InventoryHost[], restart: (host: InventoryHost) => Promise<void>, rollout: Rollout): Promise<RolloutStep[]>;
}

/** The resumable rollout of `agent` (its systemd unit) on `hosts`. */
export async function resumableRollout(
  state: Pick<StatePaths, "rollout">,
  agent: string,
  hosts: InventoryHost[],
): Promise<ResumableRollout> {
  const journal = await RolloutJournal.open(state.rollout);
  const names = hosts.map((h) => h.name);
  const left = journal.left(agent).filter((h) => names.includes(h));
  return {
    left,
    isLeft: (host) => left.includes(host.name),
    writing: (host) => journal.pending(agent, [host.name]),
    done: (done) =>
      journal.done(
        agent,
        done.map((h) => h.name),
      ),
    finish: () => journal.finish(agent, names),

    async restart(pending, restart, rollout) {
      const ordered = [
        ...left.flatMap((name) => pending.filter((h) => h.name === name)),
        ...pending.filter((h) => !left.includes(h.name)),
      ];
      if (!ordered.length) {
        await journal.finish(agent, names);
        return [];
      }
      const leader = rollout.kind === "servers" ? await rollout.gate.leader(rollout.servers).catch(() => undefined) : undefined;
      await journal.planned(agent, plannedOrder(ordered, rollout, leader));
      const inFlight = new Set<string>();
      const restartOne = async (host: InventoryHost) => {
        inFlight.add(host.name);
        await restart(host);
      };
      const stepDone = async (step: RolloutStep) => {
        await journal.done(agent, step.hosts);
        for (const host of step.hosts) inFlight.delete(host);
      };
      let steps: RolloutStep[];
      try {
        steps =
          rollout.kind === "servers"
            ? await rollServers(ordered, restartOne, rollout.gate, rollout.servers, stepDone)
            : await rollClients(ordered, restartOne, rollout.gate, rollout.batchSize, stepDone);
      } catch (error) {
        throw stoppedRollout(agent, journal, [...inFlight], error);
      }
      await journal.finish(agent, names);
      return steps;
    },
  };
}

/** The error of a rollout that stopped: where, what is done, what a re-run restarts. Bugs pass unchanged. */
function stoppedRollout(agent: string, journal: RolloutJournal, inFlight: string[], cause: unknown): unknown {
  if (!isUserError(cause)) return cause;
  const entry = journal.entry(agent);
  const done = entry?.done ?? [];
  const left = journal.left(agent);
  const where = inFlight.length ? ` at ${inFlight.join(" + ")}` : ` before restarting ${left[0] ?? "the next agent"}`;
  return new OperationError(`The rolling restart of ${agent} stopped${where}: ${cause.message}`, {
    cause,
    exitCode: cause.exitCode,
    details: [
      ...cause.details,
      `restarted and healthy: ${done.join(", ") || "none"}; not restarted yet: ${left.join(", ") || "none"}`,
    ],
    hint: `${cause.hint ? `${cause.hint} ` : ""}A re-run of bootstrap resumes the rollout: it restarts ${left.join(", ") || "what is left"} first, even where the files are already current (the resume point is kept in ${journal.file}).`,
  });
}
