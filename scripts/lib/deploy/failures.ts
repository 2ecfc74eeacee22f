/**
 * What a failed deployment says about itself: each failed, lost, pending or
 * unhealthy allocation with its tasks' recent events, the last lines of each
 * task's stderr and stdout (Nomad's logs API), the node's recent events, and,
 * where the caller can reach the node (bootstrap has SSH), the Nomad agent's
 * own log there. The lines go into the error's details, so a CI report shows
 * them without anyone logging in to the cluster.
 */
import { ApiError } from "../clients/http.ts";
import type { NomadAllocationStub, NomadClient, NomadTaskState } from "../clients/nomad.ts";
import { errorMessage } from "../errors.ts";

export interface TaskEventLine {
  /** Unix milliseconds (0 when Nomad gave none) */
  time: number;
  type: string;
  message: string;
}

export interface TaskLogTail {
  stderr: string[];
  stdout: string[];
  /** why the logs could not be read (no permission, the client is gone, …) */
  error?: string;
}

export interface TaskFailure {
  task: string;
  state: string;
  failed: boolean;
  restarts: number;
  events: TaskEventLine[];
  logs?: TaskLogTail;
}

export interface AllocationFailure {
  allocId: string;
  name: string;
  nodeId: string;
  node: string;
  clientStatus: string;
  /** Nomad's ClientDescription, e.g. "Failed tasks" */
  description: string;
  healthy: boolean | null;
  tasks: TaskFailure[];
  /** the node's recent events, when the token may read nodes */
  nodeEvents?: string[];
  /** the Nomad agent's log on the node, when the caller can reach it */
  agentLog?: { lines: string[]; source: string };
}

/** How many lines of each log a failure report keeps by default. */
export const defaultLogLines = 20;
/** Events kept per task: the start of a task's story is rarely the reason it failed. */
const eventsPerTask = 10;
/** Enough bytes for the last lines of a log with long lines; each line is cut to `lineWidth` anyway. */
const bytesPerLine = 400;
const lineWidth = 300;

/**
 * Allocations that failed, were lost or marked unhealthy, or never started,
 * with their tasks' recent events; at a timeout (`unsettled`) also those still
 * running without a health verdict, which is what the deployment waited for.
 */
export function failingAllocations(allocs: NomadAllocationStub[], options: { unsettled?: boolean } = {}): AllocationFailure[] {
  return allocs
    .filter(
      (a) =>
        a.ClientStatus === "failed" ||
        a.ClientStatus === "lost" ||
        a.DeploymentStatus?.Healthy === false ||
        a.ClientStatus === "pending" ||
        (options.unsettled === true && a.ClientStatus === "running" && a.DeploymentStatus?.Healthy !== true),
    )
    .map((a) => ({
      allocId: a.ID,
      name: a.Name,
      nodeId: a.NodeID ?? "",
      node: a.NodeName,
      clientStatus: a.ClientStatus,
      description: a.ClientDescription ?? "",
      healthy: a.DeploymentStatus?.Healthy ?? null,
      tasks: Object.entries(a.TaskStates ?? {})
        .sort(([x], [y]) => x.localeCompare(y))
        .map(([task, state]) => taskFailure(task, state)),
    }));
}

function taskFailure(task: string, state: NomadTaskState): TaskFailure {
  return {
    task,
    state: state.State,
    failed: state.Failed,
    restarts: state.Restarts ?? 0,
    events: (state.Events ?? []).slice(-eventsPerTask).map((e) => ({
      time: e.Time ? Math.floor(e.Time / 1e6) : 0,
      type: e.Type,
      message: e.DisplayMessage || e.Message || e.DriverError || "",
    })),
  };
}

export interface DiagnoseOptions {
  namespace: string;
  /** lines of each task log (0: read no logs) */
  logLines?: number;
  /** the Nomad agent's log on the allocation's node; undefined when the node cannot be reached */
  agentLog?: (failure: AllocationFailure) => Promise<{ lines: string[]; source: string } | undefined>;
}

/**
 * Add the tasks' log tails, the node's events and the agent's log to each
 * failure. Every lookup is best effort: a report that cannot read a log says
 * why instead of failing.
 */
export async function diagnoseFailures(
  nomad: NomadClient,
  failures: AllocationFailure[],
  options: DiagnoseOptions,
): Promise<AllocationFailure[]> {
  const logLines = options.logLines ?? defaultLogLines;
  const nodeEvents = new Map<string, Promise<string[] | undefined>>();
  return Promise.all(
    failures.map(async (failure) => {
      const [tasks, events, agentLog] = await Promise.all([
        Promise.all(
          failure.tasks.map(async (task) =>
            logLines > 0 && hasStarted(task) ? { ...task, logs: await taskLogs(nomad, failure, task, logLines, options) } : task,
          ),
        ),
        (() => {
          if (!failure.nodeId) return Promise.resolve(undefined);
          const known = nodeEvents.get(failure.nodeId) ?? recentNodeEvents(nomad, failure.nodeId);
          nodeEvents.set(failure.nodeId, known);
          return known;
        })(),
        options.agentLog
          ? options.agentLog(failure).catch((error: unknown) => ({
              lines: [],
              source: `the agent log could not be read: ${errorMessage(error)}`,
            }))
          : Promise.resolve(undefined),
      ]);
      return { ...failure, tasks, ...(events?.length ? { nodeEvents: events } : {}), ...(agentLog ? { agentLog } : {}) };
    }),
  );
}

/** A task that never left "pending" without a start has no log files yet. */
function hasStarted(task: TaskFailure): boolean {
  return task.state !== "pending" || task.events.some((e) => e.type === "Started" || e.type === "Terminated");
}

async function taskLogs(
  nomad: NomadClient,
  failure: AllocationFailure,
  task: TaskFailure,
  lines: number,
  options: DiagnoseOptions,
): Promise<TaskLogTail> {
  const bytes = lines * bytesPerLine;
  const read = async (type: "stdout" | "stderr") => {
    const text = await nomad.taskLogTail(failure.allocId, task.task, type, {
      bytes,
      namespace: options.namespace,
      timeoutMs: 10_000,
    });
    return lastLines(text, lines, Buffer.byteLength(text) >= bytes);
  };
  try {
    const [stderr, stdout] = await Promise.all([read("stderr"), read("stdout")]);
    return { stderr, stdout };
  } catch (error) {
    return { stderr: [], stdout: [], error: logError(error) };
  }
}

function logError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return "not readable with this token (read-logs)";
    return error.apiMessage;
  }
  return errorMessage(error);
}

async function recentNodeEvents(nomad: NomadClient, nodeId: string): Promise<string[] | undefined> {
  try {
    const node = await nomad.node(nodeId);
    if (!node) return undefined;
    return [
      `status ${node.Status}${node.StatusDescription ? ` (${node.StatusDescription})` : ""}`,
      ...(node.Events ?? []).slice(-5).map((e) => `${clock(Date.parse(e.Timestamp))} ${e.Subsystem}: ${e.Message}`),
    ];
  } catch {
    // tenant tokens may not read nodes: the report goes without
    return undefined;
  }
}

/**
 * The last `count` lines of a log, each cut to a readable width and without
 * terminal escapes; `truncated` says the text starts mid-file, so its first
 * line is partial and dropped.
 */
export function lastLines(text: string, count: number, truncated = false): string[] {
  // eslint-disable-next-line no-control-regex
  const lines = text.replace(/\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]/g, "").split("\n");
  if (truncated) lines.shift();
  while (lines.length && lines.at(-1)?.trim() === "") lines.pop();
  return lines.slice(-count).map((l) => (l.length > lineWidth ? `${l.slice(0, lineWidth)} …` : l));
}

/** HH:MM:SS in UTC: enough to line events up with agent logs of the same run. */
function clock(ms: number): string {
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString().slice(11, 19) : "--:--:--";
}

/** Lines for a report: one per allocation, then its tasks' events and log tails, the node's events and the agent log. */
export function formatFailures(failures: AllocationFailure[]): string[] {
  return failures.flatMap((f) => [
    `allocation ${f.allocId.slice(0, 8)} (${f.name}) on ${f.node}: ${f.clientStatus}${f.healthy === false ? ", unhealthy" : ""}${
      f.description ? ` — ${f.description}` : ""
    }`,
    ...f.tasks.flatMap((t) => [
      `  task "${t.task}" ${t.state}${t.failed ? " (failed)" : ""}${t.restarts ? `, ${t.restarts} restart${t.restarts > 1 ? "s" : ""}` : ""}`,
      ...t.events.map((e) => `    ${clock(e.time)} ${e.type}${e.message ? `: ${e.message}` : ""}`),
      ...(t.logs ? formatLogs(t.logs) : []),
    ]),
    ...(f.nodeEvents ? [`  node ${f.node}: ${f.nodeEvents[0]}`, ...f.nodeEvents.slice(1).map((e) => `    ${e}`)] : []),
    ...(f.agentLog
      ? [`  ${f.agentLog.source}${f.agentLog.lines.length ? ":" : ""}`, ...f.agentLog.lines.map((l) => `    | ${l}`)]
      : []),
  ]);
}

function formatLogs(logs: TaskLogTail): string[] {
  if (logs.error) return [`    logs: ${logs.error}`];
  return (["stderr", "stdout"] as const).flatMap((stream) =>
    logs[stream].length
      ? [
          `    ${stream} (last ${logs[stream].length} line${logs[stream].length > 1 ? "s" : ""}):`,
          ...logs[stream].map((l) => `      | ${l}`),
        ]
      : [`    ${stream}: empty`],
  );
}
