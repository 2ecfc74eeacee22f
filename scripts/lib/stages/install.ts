/**
 * Installing files and services on a node without needless restarts: a unit is
 * restarted only when one of its files changed (or its binary, or a stopped
 * rollout left it unrestarted: resume.ts), and started when it is not running.
 */
import pLimit from "p-limit";
import { fileStateCommand, isCurrent, parseFileStates } from "../remote/file-state.ts";
import type { Remote } from "../remote/remote.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import type { HostPlan, PlannedFile } from "../render/plan.ts";
import type { StatePaths } from "../state/paths.ts";
import { RolloutJournal } from "../state/rollout-journal.ts";
import { resumableRollout } from "./resume.ts";
import { type ClientGate, plannedOrder, type Rollout, type RolloutStep, type ServerGate } from "./rolling.ts";

/**
 * Upload planned files; returns the paths whose content or metadata changed. The
 * node's files are checked in one command; only those that differ are uploaded,
 * after `beforeUpload` was told which (the rollout journal records the host first).
 */
export async function installFiles(
  remote: Remote,
  files: PlannedFile[],
  beforeUpload?: (paths: string[]) => Promise<void>,
): Promise<string[]> {
  if (!files.length) return [];
  const states = parseFileStates((await remote.runAsRoot(fileStateCommand(files.map((f) => f.path)))).stdout);
  const differ = files.filter((file) => !isCurrent(states.get(file.path), file.content, file));
  if (differ.length) await beforeUpload?.(differ.map((f) => f.path));
  // a few at a time (each upload is one command: sshd allows 10 sessions per connection)
  const limit = pLimit(4);
  const outcomes = await Promise.all(
    differ.map((file) =>
      limit(() => remote.uploadContent(file.content, file.path, { mode: file.mode, owner: file.owner, group: file.group })),
    ),
  );
  return differ.filter((_, i) => outcomes[i] !== "unchanged").map((f) => f.path);
}

export type ServiceOutcome = "started" | "restarted" | "unchanged";

/** What a unit needs once its files are in place: started (not running), restarted or reloaded, or nothing. */
export type ServiceAction = "start" | "restart" | "reload" | "none";

interface ServiceChange {
  /** whether any of its files changed in this run */
  changed: boolean;
  unitFileChanged: boolean;
  /** reload instead of restart when the binary is the same */
  reload?: boolean;
}

/**
 * Decide what a unit needs (re-reading unit files and enabling it on the way):
 * a running unit is restarted only when one of its files changed or its binary
 * was replaced since it started, or reloaded when `reload` is set and the binary is the same.
 */
export async function serviceAction(remote: Remote, unit: string, options: ServiceChange): Promise<ServiceAction> {
  if (options.unitFileChanged) await remote.reloadUnits();
  const service = remote.service(unit);
  const { active, binaryReplaced, enabled } = await service.status();
  if (!active) return "start";
  if (enabled !== true) await service.enable();
  return decideAction(true, binaryReplaced, options);
}

function decideAction(active: boolean, binaryReplaced: boolean, options: ServiceChange): ServiceAction {
  if (!active) return "start";
  if (!options.changed && !binaryReplaced) return "none";
  return options.reload && !binaryReplaced ? "reload" : "restart";
}

export async function applyServiceAction(remote: Remote, unit: string, action: ServiceAction): Promise<ServiceOutcome> {
  const service = remote.service(unit);
  if (action === "start") {
    await service.enable({ now: true });
    return "started";
  }
  if (action === "none") return "unchanged";
  if (action === "reload") await service.reload();
  else await service.restart();
  return "restarted";
}

/** Make sure a unit is enabled and running with its current files (see `serviceAction`). */
export async function ensureService(remote: Remote, unit: string, options: ServiceChange): Promise<ServiceOutcome> {
  return applyServiceAction(remote, unit, await serviceAction(remote, unit, options));
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

type AgentRun = {
  remote(host: InventoryHost): Remote;
  plans: Map<string, HostPlan>;
  config: { concurrency: number };
  state: Pick<StatePaths, "rollout">;
};

/** What installing an agent did: how many units started, which restarted, in which steps. */
export interface AgentRollout {
  started: string[];
  steps: RolloutStep[];
}

/** How many agents started or restarted. */
export const touched = (rollout: AgentRollout) => rollout.started.length + rollout.steps.reduce((n, s) => n + s.hosts.length, 0);

/**
 * An agent's files and service on these hosts. Files go everywhere first (in
 * parallel); agents that are not running start together (a new cluster's
 * servers need each other to elect a leader); running agents whose files changed,
 * and those a stopped run left unrestarted, restart in the rollout's order, each
 * step healthy before the next, recorded in the rollout journal (resume.ts).
 */
export async function installAgents(
  run: AgentRun,
  hosts: InventoryHost[],
  agent: AgentInstall,
  rollout: Rollout,
): Promise<AgentRollout> {
  const resume = await resumableRollout(run.state, agent.service, hosts);
  const decided = await onEachHost(
    hosts,
    async (host) => {
      const remote = run.remote(host);
      const changed = await installFiles(remote, filesUnder(run.plans.get(host.name)?.files ?? [], ...agent.paths), (paths) =>
        agentChange(agent, paths).changed ? resume.writing(host) : Promise.resolve(),
      );
      await agent.afterInstall?.(remote, changed);
      const change = agentChange(agent, changed);
      return serviceAction(remote, agent.service, { ...change, changed: change.changed || resume.isLeft(host) });
    },
    { concurrency: run.config.concurrency },
  );
  const decisions = requireAllSucceeded(agent.what, decided);
  const actions = new Map(hosts.map((h, i) => [h.name, decisions[i] as ServiceAction]));
  const started = hosts.filter((h) => actions.get(h.name) === "start");
  const starting = await onEachHost(started, (h) => applyServiceAction(run.remote(h), agent.service, "start"), {
    concurrency: run.config.concurrency,
  });
  requireAllSucceeded(agent.what, starting);
  await resume.done(started);
  const pending = hosts.filter((h) => ["restart", "reload"].includes(actions.get(h.name) as string));
  const restart = async (host: InventoryHost) => {
    await applyServiceAction(run.remote(host), agent.service, actions.get(host.name) as ServiceAction);
  };
  const steps = await resume.restart(pending, restart, rollout);
  return { started: started.map((h) => h.name), steps };
}

function agentChange(agent: AgentInstall, changed: string[]): ServiceChange {
  return {
    changed: changed.some((f) => !agent.notTheAgents?.includes(f)),
    unitFileChanged: changed.includes(agent.unitFile),
  };
}

/** What installing an agent would change on one host, found without changing anything. */
export interface AgentPlan {
  host: InventoryHost;
  files: string[];
  action: ServiceAction;
  /** a stopped rollout left this agent unrestarted */
  left?: boolean;
}

/** The dry run of `installAgents`: the files that differ on each host and what each unit would need. */
export async function planAgents(run: AgentRun, hosts: InventoryHost[], agent: AgentInstall): Promise<AgentPlan[]> {
  const left = (await RolloutJournal.open(run.state.rollout)).left(agent.service);
  const outcomes = await onEachHost(
    hosts,
    async (host): Promise<AgentPlan> => {
      const remote = run.remote(host);
      const files: string[] = [];
      for (const file of filesUnder(run.plans.get(host.name)?.files ?? [], ...agent.paths)) {
        const options = { mode: file.mode, owner: file.owner, group: file.group };
        if ((await remote.compareContent(file.content, file.path, options)) !== "unchanged") files.push(file.path);
      }
      const { active, binaryReplaced } = await remote.service(agent.service).status();
      const change = agentChange(agent, files);
      const isLeft = left.includes(host.name);
      const action = decideAction(active, binaryReplaced, { ...change, changed: change.changed || isLeft });
      return { host, files, action, ...(isLeft ? { left: true } : {}) };
    },
    { concurrency: run.config.concurrency },
  );
  return requireAllSucceeded(`planning ${agent.what}`, outcomes);
}

/** A dry run's lines for one agent: each host's changed files, then the starts and the restart order. */
export function describeAgentPlan(service: string, plans: AgentPlan[], rollout: Rollout, leader?: string): string[] {
  const lines = plans.filter((p) => p.files.length).map((p) => `${p.host.name}: ${p.files.join(", ")} would change`);
  const restarting = plans.filter((p) => p.action === "restart" || p.action === "reload");
  const left = restarting.filter((p) => p.left).map((p) => p.host.name);
  if (left.length) lines.push(`${service} on ${left.join(", ")}: not restarted by a stopped run, would restart to resume it`);
  const starts = plans.filter((p) => p.action === "start").map((p) => p.host.name);
  if (starts.length) lines.push(`${service} would start on ${starts.join(", ")}`);
  // those a stopped run left restart first (resume.ts)
  const pending = [...restarting.filter((p) => p.left), ...restarting.filter((p) => !p.left)].map((p) => p.host);
  if (pending.length) {
    const order = plannedOrder(pending, rollout, leader).map((step) => step.join(" + "));
    const how = rollout.kind === "servers" ? "one at a time" : `in batches of ${rollout.batchSize}`;
    const lead =
      rollout.kind === "servers" && pending.some((h) => h.name === leader)
        ? ` (${leader} leads: last, after a leadership transfer)`
        : "";
    lines.push(`${service} would restart ${how}: ${order.join(" → ")}${lead}`);
  }
  return lines;
}

/** The rollouts of an agent: servers one at a time behind `serverGate`, clients in batches of `rollout.clientBatchSize`. */
export function agentRollouts(
  run: { inventory: Inventory; config: { rollout: { clientBatchSize: number } } },
  serverGate: ServerGate,
  clientGate: ClientGate,
): { servers: Rollout; clients: Rollout } {
  return {
    servers: { kind: "servers", gate: serverGate, servers: hostsWithRole(run.inventory, "server") },
    clients: { kind: "clients", gate: clientGate, batchSize: run.config.rollout.clientBatchSize },
  };
}

/** The stage summary's words for one rollout, e.g. "2 restarted in order server-2, server-3, server-1 (after a leadership transfer)". */
export function describeRollout(rollout: AgentRollout): string | undefined {
  const parts: string[] = [];
  if (rollout.started.length) parts.push(`${rollout.started.length} agents started`);
  const restarted = rollout.steps.reduce((n, s) => n + s.hosts.length, 0);
  if (restarted) {
    const order = rollout.steps.map((s) => `${s.hosts.join(" + ")}${s.transferred ? " (after a leadership transfer)" : ""}`);
    parts.push(`${restarted} restarted in order ${order.join(", ")}`);
  }
  return parts.length ? parts.join(", ") : undefined;
}

/** A stage's dry run for one agent on every host: servers (with the current leader last), then clients. */
export async function planRollingAgents(
  run: AgentRun & { inventory: Inventory },
  agent: AgentInstall,
  rollouts: { servers: Rollout; clients: Rollout },
): Promise<string[]> {
  const servers = hostsWithRole(run.inventory, "server");
  const serverPlans = await planAgents(run, servers, agent);
  const restarting = serverPlans.some((p) => p.action === "restart" || p.action === "reload");
  const leader =
    restarting && rollouts.servers.kind === "servers"
      ? await rollouts.servers.gate.leader(servers).catch(() => undefined)
      : undefined;
  return [
    ...describeAgentPlan(agent.service, serverPlans, rollouts.servers, leader),
    ...describeAgentPlan(agent.service, await planAgents(run, hostsWithRole(run.inventory, "client"), agent), rollouts.clients),
  ];
}
