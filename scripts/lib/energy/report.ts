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
  const [energy, co2e] = await Promise.all(queries.map((q) => instantQuery(request.prometheus, q, request.to, timeout)));
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
    queries,
  };
}

const round = (n: number, digits = 3) => Number(n.toPrecision(digits + 3)).toFixed(digits);

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
  ];
}
