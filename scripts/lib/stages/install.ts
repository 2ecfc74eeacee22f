/**
 * Installing files and services on a node without needless restarts: a unit is
 * restarted only when one of its files changed, and started when it is not running.
 */
import { fileStateCommand, isCurrent, parseFileStates } from "../remote/file-state.ts";
import type { Remote } from "../remote/remote.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import type { HostPlan, PlannedFile } from "../render/plan.ts";

/**
 * Upload planned files; returns the paths whose content or metadata changed. The
 * node's files are checked in one command; only those that differ are uploaded.
 */
export async function installFiles(remote: Remote, files: PlannedFile[]): Promise<string[]> {
  if (!files.length) return [];
  const states = parseFileStates((await remote.runAsRoot(fileStateCommand(files.map((f) => f.path)))).stdout);
  const changed: string[] = [];
  for (const file of files) {
    if (isCurrent(states.get(file.path), file.content, file)) continue;
    const outcome = await remote.uploadContent(file.content, file.path, {
      mode: file.mode,
      owner: file.owner,
      group: file.group,
    });
    if (outcome !== "unchanged") changed.push(file.path);
  }
  return changed;
}

export type ServiceOutcome = "started" | "restarted" | "unchanged";

/**
 * Make sure a unit is enabled and running with its current files. `changed`
 * says whether any of its files changed in this run; only then, or when its
 * binary was replaced since it started, is a running unit restarted (or
 * reloaded, when `reload` is set and the binary is the same).
 */
export async function ensureService(
  remote: Remote,
  unit: string,
  options: { changed: boolean; unitFileChanged: boolean; reload?: boolean },
): Promise<ServiceOutcome> {
  if (options.unitFileChanged) await remote.reloadUnits();
  const service = remote.service(unit);
  const { active, binaryReplaced } = await service.status();
  if (!active) {
    await service.enable({ now: true });
    return "started";
  }
  await service.enable();
  if (!options.changed && !binaryReplaced) return "unchanged";
  if (options.reload && !binaryReplaced) await service.reload();
  else await service.restart();
  return "restarted";
}

/** Files of a plan under a directory prefix (e.g. everything for Consul). */
export function filesUnder(files: PlannedFile[], ...prefixes: string[]): PlannedFile[] {
  return files.filter((f) => prefixes.some((p) => f.path.startsWith(p)));
}

export interface AgentInstall {
  /** the systemd unit, e.g. consul */
  service: string;
  /** what the failure message says it was doing, e.g. "installing Consul" */
  what: string;
  /** the plan's files under these prefixes are the agent's */
  paths: string[];
  unitFile: string;
  /** files installed with the agent that do not restart it; `afterInstall` handles them */
  notTheAgents?: string[];
  afterInstall?(remote: Remote, changed: string[]): Promise<void>;
}

/** An agent's files and service on these hosts; returns how many agents were started or restarted. */
export async function installAgents(
  run: { remote(host: InventoryHost): Remote; plans: Map<string, HostPlan>; config: { concurrency: number } },
  hosts: InventoryHost[],
  agent: AgentInstall,
): Promise<number> {
  const outcomes = await onEachHost(
    hosts,
    async (host) => {
      const remote = run.remote(host);
      const changed = await installFiles(remote, filesUnder(run.plans.get(host.name)?.files ?? [], ...agent.paths));
      await agent.afterInstall?.(remote, changed);
      return ensureService(remote, agent.service, {
        changed: changed.some((f) => !agent.notTheAgents?.includes(f)),
        unitFileChanged: changed.includes(agent.unitFile),
      });
    },
    { concurrency: run.config.concurrency },
  );
  return requireAllSucceeded(agent.what, outcomes).filter((o) => o !== "unchanged").length;
}
