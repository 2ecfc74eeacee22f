/** Pure formatting of a Nomad plan: counts per task group, field-level diff lines, placement failures. */
import type { NomadAllocMetric, NomadFieldDiff, NomadObjectDiff, NomadPlanResponse } from "../clients/nomad.ts";

export interface GroupChanges {
  group: string;
  place: number;
  stop: number;
  inPlace: number;
  destructive: number;
  canary: number;
  ignore: number;
  migrate: number;
}

export interface PlanSummary {
  /** false for a no-op re-deploy (the job diff is "None") */
  changes: boolean;
  diffType: string;
  groups: GroupChanges[];
  /** "+ Meta[greeting]: "hi"", "~ TaskGroup web / Task server / Config.args: … => …" */
  diff: string[];
  placementFailures: string[];
  warnings: string[];
  jobModifyIndex: number;
}

export function summarizePlan(plan: NomadPlanResponse): PlanSummary {
  const updates = plan.Annotations?.DesiredTGUpdates ?? {};
  const groups = Object.entries(updates)
    .map(([group, u]) => ({
      group,
      place: u.Place ?? 0,
      stop: u.Stop ?? 0,
      inPlace: u.InPlaceUpdate ?? 0,
      destructive: u.DestructiveUpdate ?? 0,
      canary: u.Canary ?? 0,
      ignore: u.Ignore ?? 0,
      migrate: u.Migrate ?? 0,
    }))
    .sort((a, b) => a.group.localeCompare(b.group));
  const diffType = plan.Diff?.Type ?? "None";
  const diff: string[] = [];
  if (plan.Diff && diffType !== "None") {
    // a new or removed job lists groups and tasks only; field-level lines are for edits
    const edited = diffType === "Edited";
    if (edited) diff.push(...fieldLines(plan.Diff.Fields, []), ...objectLines(plan.Diff.Objects, []));
    for (const tg of plan.Diff.TaskGroups ?? []) {
      if (tg.Type === "None") continue;
      const path = [`group "${tg.Name}"`];
      if (tg.Type !== "Edited") {
        diff.push(`${marker(tg.Type)} ${path[0]}`);
        for (const task of tg.Tasks ?? [])
          diff.push(`${marker(task.Type)} ${path[0]} / task "${task.Name}"${notes(task.Annotations)}`);
        continue;
      }
      diff.push(...fieldLines(tg.Fields, path), ...objectLines(tg.Objects, path));
      for (const task of tg.Tasks ?? []) {
        if (task.Type === "None") continue;
        const taskPath = [...path, `task "${task.Name}"`];
        if (task.Type !== "Edited") {
          diff.push(`${marker(task.Type)} ${taskPath.join(" / ")}${notes(task.Annotations)}`);
          continue;
        }
        diff.push(`~ ${taskPath.join(" / ")}${notes(task.Annotations)}`);
        diff.push(...fieldLines(task.Fields, taskPath), ...objectLines(task.Objects, taskPath));
      }
    }
  }
  return {
    changes: diffType !== "None",
    diffType,
    groups,
    diff,
    placementFailures: placementFailures(plan.FailedTGAllocs),
    warnings: plan.Warnings ? flattenMultiError(plan.Warnings) : [],
    jobModifyIndex: plan.JobModifyIndex,
  };
}

/** "web: 1 to place, 1 in-place" — only the non-zero counts; "web: no changes" otherwise. */
export function formatGroup(g: GroupChanges): string {
  const parts = [
    [g.place, "to place"],
    [g.stop, "to stop"],
    [g.inPlace, "in-place"],
    [g.destructive, "destructive"],
    [g.canary, "canary"],
    [g.migrate, "to migrate"],
    [g.ignore, "unchanged"],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, label]) => `${n} ${label}`);
  return `group "${g.group}": ${parts.length ? parts.join(", ") : "nothing to do"}`;
}

/** The lines printed for one job's plan. */
export function formatPlan(jobId: string, summary: PlanSummary): string[] {
  if (!summary.changes) return [`job "${jobId}": no changes`];
  const lines = [`job "${jobId}": ${summary.diffType === "Added" ? "new job" : "changes"}`];
  lines.push(...summary.groups.map((g) => `  ${formatGroup(g)}`));
  lines.push(...summary.diff.map((d) => `    ${d}`));
  lines.push(...summary.placementFailures.map((f) => `  ! ${f}`));
  return lines;
}

function notes(annotations: string[] | null | undefined): string {
  return annotations?.length ? ` (${annotations.join(", ")})` : "";
}

function marker(type: string): string {
  return type === "Added" ? "+" : type === "Deleted" ? "-" : type === "Edited" ? "~" : " ";
}

function fieldLines(fields: NomadFieldDiff[] | null, path: string[]): string[] {
  return (fields ?? [])
    .filter((f) => f.Type !== "None")
    .map((f) => {
      const name = [...path, f.Name].join(" / ");
      const note = notes(f.Annotations);
      if (f.Type === "Added") return `+ ${name}: ${quote(f.New)}${note}`;
      if (f.Type === "Deleted") return `- ${name}: ${quote(f.Old)}${note}`;
      return `~ ${name}: ${quote(f.Old)} => ${quote(f.New)}${note}`;
    });
}

function objectLines(objects: NomadObjectDiff[] | null, path: string[]): string[] {
  return (objects ?? [])
    .filter((o) => o.Type !== "None")
    .flatMap((o) => {
      const inner = [...path, o.Name];
      return [...fieldLines(o.Fields, inner), ...objectLines(o.Objects, inner)];
    });
}

function quote(value: string): string {
  return JSON.stringify(value);
}

/** FailedTGAllocs → "group "web": no node could place 1 allocation (constraint …: 1 nodes filtered; memory exhausted on 1 nodes)" */
export function placementFailures(failed: Record<string, NomadAllocMetric> | null | undefined): string[] {
  return Object.entries(failed ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([group, m]) => {
      const reasons = [
        ...Object.entries(m.ConstraintFiltered ?? {}).map(([c, n]) => `constraint ${c} filtered ${n} node(s)`),
        ...Object.entries(m.ClassFiltered ?? {}).map(([c, n]) => `class ${c} filtered ${n} node(s)`),
        ...Object.entries(m.DimensionExhausted ?? {}).map(([d, n]) => `${d} exhausted on ${n} node(s)`),
        ...Object.entries(m.ClassExhausted ?? {}).map(([c, n]) => `class ${c} exhausted on ${n} node(s)`),
        ...(m.QuotaExhausted ?? []).map((q) => `quota ${q} exhausted`),
      ];
      const evaluated = `${m.NodesEvaluated} node(s) evaluated`;
      const count = 1 + (m.CoalescedFailures ?? 0);
      return `group "${group}": cannot place ${count} allocation(s) — ${[evaluated, ...reasons].join("; ")}`;
    });
}

/** Go's multierror nests "N errors occurred:\n\t* …"; keep the messages, one per line. */
export function flattenMultiError(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/^\s*\*\s*/, "").trim())
    .filter((l) => l && !/^\d+ (errors? occurred|warnings?):$/.test(l))
    .map((l) => l.replace(/:?\s*\d+ (errors? occurred|warnings?):$/, ""))
    .filter(Boolean);
}
