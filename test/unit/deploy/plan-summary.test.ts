import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { NomadPlanResponse } from "../../../scripts/lib/clients/nomad.ts";
import { formatGroup, formatPlan, summarizePlan } from "../../../scripts/lib/deploy/plan-summary.ts";

// plan responses captured from a real Nomad 1.11 dev agent (POST /v1/job/:id/plan with Diff: true)
const fixture = (name: string) =>
  JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", `${name}.json`), "utf8")) as NomadPlanResponse;

describe("plan summary", () => {
  it("a no-op plan has no changes even though Nomad annotates an in-place update", () => {
    const plan = fixture("plan-noop");
    expect(plan.Annotations?.DesiredTGUpdates?.web?.InPlaceUpdate).toBe(1);
    const summary = summarizePlan(plan);
    expect(summary.changes).toBe(false);
    expect(summary.diff).toEqual([]);
    expect(formatPlan("hello", summary)).toEqual(['job "hello": no changes']);
  });

  it("an edit lists counts per group and field-level lines with annotations", () => {
    const summary = summarizePlan(fixture("plan-edit"));
    expect(summary.changes).toBe(true);
    expect(summary.jobModifyIndex).toBeGreaterThan(0);
    expect(summary.groups).toEqual([
      { group: "web", place: 1, stop: 0, inPlace: 0, destructive: 0, canary: 0, ignore: 1, migrate: 0 },
    ]);
    const lines = formatPlan("hello", summary);
    expect(lines.slice(0, 2)).toEqual(['job "hello": changes', '  group "web": 1 to place, 1 unchanged']);
    expect(lines).toContain('    ~ Meta[greeting]: "he said \\"hi\\" ${x} %{y} \\\\n" => "v2"');
    expect(lines).toContain('    ~ group "web" / Count: "1" => "2" (forces create)');
    expect(lines).toContain('    ~ group "web" / task "server" (forces create/destroy update)');
    expect(lines).toContain('    + group "web" / task "server" / Config / args[6]: "${NOMAD_PORT_http}"');
    // unchanged fields are not listed
    expect(lines.some((l) => l.includes("Driver"))).toBe(false);
  });

  it("a new job lists groups and tasks, not every default field, plus placement failures", () => {
    const summary = summarizePlan(fixture("plan-new-unplaceable"));
    expect(summary.diffType).toBe("Added");
    expect(formatPlan("big", summary)).toEqual([
      'job "big": new job',
      '  group "web": 1 to place',
      '    + group "web"',
      '    + group "web" / task "server" (forces create)',
      '  ! group "web": cannot place 1 allocation(s) — 1 node(s) evaluated; memory exhausted on 1 node(s)',
    ]);
  });

  it("formats every kind of count and says when a group has nothing to do", () => {
    expect(formatGroup({ group: "g", place: 1, stop: 2, inPlace: 3, destructive: 4, canary: 5, ignore: 6, migrate: 7 })).toBe(
      'group "g": 1 to place, 2 to stop, 3 in-place, 4 destructive, 5 canary, 7 to migrate, 6 unchanged',
    );
    expect(formatGroup({ group: "g", place: 0, stop: 0, inPlace: 0, destructive: 0, canary: 0, ignore: 0, migrate: 0 })).toBe(
      'group "g": nothing to do',
    );
  });

  it("flattens Go multierror warnings into one message per line", () => {
    const plan = {
      ...fixture("plan-noop"),
      Warnings:
        '2 warnings:\n\n* Group "web" has warnings: 1 error occurred:\n\t* Task "x" uses a deprecated field\n\n* Another warning\n',
    };
    expect(summarizePlan(plan).warnings).toEqual([
      'Group "web" has warnings',
      'Task "x" uses a deprecated field',
      "Another warning",
    ]);
  });
});
