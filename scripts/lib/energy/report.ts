/**
 * "How much energy and CO2e did job X / namespace Y use between T1 and T2?",
 * answered from Prometheus with `increase()` over the exporter's counters
 * (so exporter restarts are handled as counter resets). `increase()`
 * extrapolates at the window's edges: figures are exact to within one scrape
 * interval's worth of energy at each end.
 */
import { InputError, OperationError } from "../errors.ts";
import { durationSeconds, isDuration } from "../util/duration.ts";
import { joulesPerKwh } from "./carbon.ts";
import { prefix } from "./exporter.ts";

export interface ReportRequest {
  prometheus: string;
  job?: string;
  namespace?: string;
  from: Date;
  to: Date;
  timeoutMs?: number;
}

export interface ReportRow {
  namespace: string;
  job: string;
  group: string;
  task: string;
  estimated: boolean;
  joules: number;
  co2eGrams: number;
}

/** One part of the nodes' energy; the parts add up to the nodes' total. */
export interface NodeShare {
  part: "subject" | "other tasks" | "system" | "unattributed";
  joules: number;
  co2eGrams: number;
}

export interface EnergyReport {
  subject: { job?: string; namespace?: string };
  from: string;
  to: string;
  joules: number;
  kilowattHours: number;
  co2eGrams: number;
  /** true when any of the energy came from the estimation model */
  estimated: boolean;
  tasks: ReportRow[];
  /**
   * The nodes the subject's tasks ran on, whole: the subject's tasks, other
   * tasks, `system` (host processes) and `unattributed` (idle power), so the
   * subject's share can be read against what the nodes used.
   */
  nodes: { names: string[]; joules: number; co2eGrams: number; shares: NodeShare[] };
  queries: string[];
}

/** RFC 3339, Unix seconds, `now`, or a duration before now such as `-2h`. */
export function parseTime(text: string, flag: string, now = Date.now()): Date {
  if (text === "now") return new Date(now);
  if (text.startsWith("-") && isDuration(text.slice(1))) return new Date(now - durationSeconds(text.slice(1)) * 1000);
  if (/^\d+(\.\d+)?$/.test(text)) return new Date(Number(text) * 1000);
  const date = new Date(text);
  if (Number.isNaN(date.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new InputError(`${flag} '${text}' is not a time.`, {
      hint: "Use RFC 3339 (2026-11-22T04:00:00Z), Unix seconds, 'now', or a duration before now such as -2h.",
    });
  }
  return date;
}

function labelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

export function reportSelector(request: Pick<ReportRequest, "job" | "namespace">): string {
  const matchers: string[] = [];
  if (request.namespace) matchers.push(`nomad_namespace="${labelValue(request.namespace)}"`);
  if (request.job) matchers.push(`nomad_job="${labelValue(request.job)}"`);
  return `{${matchers.join(",")}}`;
}

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function instantQuery(base: string, query: string, time: Date, timeoutMs: number): Promise<VectorSample[]> {
  const url = `${base.replace(/\/$/, "")}/api/v1/query`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      body: new URLSearchParams({ query, time: String(time.getTime() / 1000) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new OperationError(`Prometheus at ${base} did not answer: ${(error as Error).message}`, {
      cause: error,
      hint: "Check --prometheus (e.g. http://prometheus.service.consul:9090) and that it is reachable from here.",
    });
  }
  const body = (await response.json().catch(() => undefined)) as
    { status: string; error?: string; data?: { resultType: string; result: VectorSample[] } } | undefined;
  if (!response.ok || body?.status !== "success" || body.data?.resultType !== "vector") {
    throw new OperationError(`Prometheus query failed (HTTP ${response.status}): ${body?.error ?? "unexpected answer"}`, {
      details: [`query: ${query}`],
    });
  }
  return body.data.result;
}

export async function energyReport(request: ReportRequest): Promise<EnergyReport> {
  if (!request.job && !request.namespace) throw new InputError("Say what to report on: --job NAME and/or --namespace NS.");
  if (request.to <= request.from) throw new InputError("--to must be after --from.");
  const seconds = Math.max(1, Math.round((request.to.getTime() - request.from.getTime()) / 1000));
  const selector = reportSelector(request);
  const by = "nomad_namespace, nomad_job, task_group, task, estimated";
  const queries = [
    `sum by (${by}) (increase(${prefix}task_joules_total${selector}[${seconds}s]))`,
    `sum by (${by}) (increase(${prefix}task_co2e_grams_total${selector}[${seconds}s]))`,
  ];
  const timeout = request.timeoutMs ?? 30_000;
  const ask = (q: string) => instantQuery(request.prometheus, q, request.to, timeout);
  const range = `[${seconds}s]`;
  const nodesQuery = `sum by (node) (increase(${prefix}task_joules_total${selector}${range})) > 0`;
  queries.push(nodesQuery);
  const [energy, co2e, nodeRows] = await Promise.all([...queries.map(ask)]);
  const names = [...new Set((nodeRows ?? []).map((s) => s.metric.node ?? ""))].filter(Boolean).sort();
  const nodes: EnergyReport["nodes"] = { names, joules: 0, co2eGrams: 0, shares: [] };
  if (names.length > 0) {
    const onNodes = `{node=~"${names.map((n) => labelValue(n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("|")}"}`;
    const nodeQueries = [
      `sum(increase(${prefix}node_joules_total${onNodes}${range}))`,
      `sum(increase(${prefix}node_co2e_grams_total${onNodes}${range}))`,
      `sum by (bucket) (increase(${prefix}bucket_joules_total${onNodes}${range}))`,
      `sum by (bucket) (increase(${prefix}bucket_co2e_grams_total${onNodes}${range}))`,
    ];
    queries.push(...nodeQueries);
    const [nodeJ, nodeG, bucketJ, bucketG] = await Promise.all(nodeQueries.map(ask));
    const scalar = (r: VectorSample[] | undefined) => Number(r?.[0]?.value[1] ?? 0);
    const bucket = (r: VectorSample[] | undefined, name: string) =>
      Number(r?.find((s) => s.metric.bucket === name)?.value[1] ?? 0);
    nodes.joules = scalar(nodeJ);
    nodes.co2eGrams = scalar(nodeG);
    const subjectJ = (energy ?? []).reduce((sum, s) => sum + Number(s.value[1]), 0);
    const subjectG = (co2e ?? []).reduce((sum, s) => sum + Number(s.value[1]), 0);
    const parts: NodeShare[] = [
      { part: "subject", joules: subjectJ, co2eGrams: subjectG },
      { part: "system", joules: bucket(bucketJ, "system"), co2eGrams: bucket(bucketG, "system") },
      { part: "unattributed", joules: bucket(bucketJ, "unattributed"), co2eGrams: bucket(bucketG, "unattributed") },
    ];
    // the rest of the nodes' energy went to other tasks; as a remainder, the parts add up to the total
    const other: NodeShare = {
      part: "other tasks",
      joules: Math.max(0, nodes.joules - parts.reduce((sum, p) => sum + p.joules, 0)),
      co2eGrams: Math.max(0, nodes.co2eGrams - parts.reduce((sum, p) => sum + p.co2eGrams, 0)),
    };
    nodes.shares = [parts[0] as NodeShare, other, parts[1] as NodeShare, parts[2] as NodeShare];
  }
  const rows = new Map<string, ReportRow>();
  const row = (m: Record<string, string>) => {
    const key = [m.nomad_namespace, m.nomad_job, m.task_group, m.task, m.estimated].join("\u0000");
    let r = rows.get(key);
    if (!r) {
      r = {
        namespace: m.nomad_namespace ?? "",
        job: m.nomad_job ?? "",
        group: m.task_group ?? "",
        task: m.task ?? "",
        estimated: m.estimated === "true",
        joules: 0,
        co2eGrams: 0,
      };
      rows.set(key, r);
    }
    return r;
  };
  for (const s of energy ?? []) row(s.metric).joules += Number(s.value[1]);
  for (const s of co2e ?? []) row(s.metric).co2eGrams += Number(s.value[1]);
  const tasks = [...rows.values()].sort((a, b) => b.joules - a.joules);
  const joules = tasks.reduce((s, r) => s + r.joules, 0);
  return {
    subject: { job: request.job, namespace: request.namespace },
    from: request.from.toISOString(),
    to: request.to.toISOString(),
    joules,
    kilowattHours: joules / joulesPerKwh,
    co2eGrams: tasks.reduce((s, r) => s + r.co2eGrams, 0),
    estimated: tasks.some((r) => r.estimated),
    tasks,
    nodes,
    queries,
  };
}

const round = (n: number, digits = 3) => Number(n.toPrecision(digits + 3)).toFixed(digits);

const shareName = (s: NodeShare) =>
  ({
    subject: "this report's tasks",
    "other tasks": "other tasks",
    system: "system (host processes)",
    unattributed: "unattributed (idle power)",
  })[s.part];
const percent = (part: number, total: number) => (total > 0 ? `${((100 * part) / total).toFixed(1)} %` : "–");

export function reportMarkdown(report: EnergyReport): string {
  const subject = [
    report.subject.namespace && `namespace \`${report.subject.namespace}\``,
    report.subject.job && `job \`${report.subject.job}\``,
  ]
    .filter(Boolean)
    .join(", ");
  const lines = [
    `## Energy report: ${subject}`,
    "",
    `${report.from} → ${report.to}`,
    "",
    "| energy (J) | energy (kWh) | CO2e (g) | source |",
    "|---:|---:|---:|---|",
    `| ${round(report.joules, 1)} | ${round(report.kilowattHours, 6)} | ${round(report.co2eGrams, 3)} | ${report.estimated ? "estimated (model)" : "measured (RAPL)"} |`,
  ];
  if (report.tasks.length) {
    lines.push("", "| namespace | job | group | task | energy (J) | CO2e (g) | estimated |", "|---|---|---|---|---:|---:|---|");
    for (const t of report.tasks) {
      lines.push(
        `| ${t.namespace} | ${t.job} | ${t.group} | ${t.task} | ${round(t.joules, 1)} | ${round(t.co2eGrams, 3)} | ${t.estimated ? "yes" : "no"} |`,
      );
    }
  } else lines.push("", "_No energy series matched in this window._");
  if (report.nodes.names.length) {
    lines.push(
      "",
      `Nodes it ran on (${report.nodes.names.map((n) => `\`${n}\``).join(", ")}), whole:`,
      "",
      "| part | energy (J) | share | CO2e (g) |",
      "|---|---:|---:|---:|",
    );
    for (const s of report.nodes.shares) {
      lines.push(
        `| ${shareName(s)} | ${round(s.joules, 1)} | ${percent(s.joules, report.nodes.joules)} | ${round(s.co2eGrams, 3)} |`,
      );
    }
    lines.push(`| **node total** | ${round(report.nodes.joules, 1)} | 100 % | ${round(report.nodes.co2eGrams, 3)} |`);
  }
  return `${lines.join("\n")}\n`;
}

export function reportText(report: EnergyReport): string[] {
  const subject = [
    report.subject.namespace && `namespace ${report.subject.namespace}`,
    report.subject.job && `job ${report.subject.job}`,
  ]
    .filter(Boolean)
    .join(", ");
  return [
    `${subject}: ${round(report.joules, 1)} J (${round(report.kilowattHours, 6)} kWh), ${round(report.co2eGrams, 3)} g CO2e${report.estimated ? " (estimated)" : ""}`,
    ...report.tasks.map(
      (t) => `  ${t.namespace}/${t.job}/${t.group}/${t.task}: ${round(t.joules, 1)} J, ${round(t.co2eGrams, 3)} g`,
    ),
    ...(report.nodes.names.length
      ? [
          `nodes ${report.nodes.names.join(", ")}: ${round(report.nodes.joules, 1)} J, ${round(report.nodes.co2eGrams, 3)} g in all`,
          ...report.nodes.shares.map(
            (s) =>
              `  ${shareName(s)}: ${round(s.joules, 1)} J (${percent(s.joules, report.nodes.joules)}), ${round(s.co2eGrams, 3)} g`,
          ),
        ]
      : []),
  ];
}
