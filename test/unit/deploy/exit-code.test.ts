import { describe, expect, it } from "vitest";
import type { JobDeployResult, JobOutcome } from "../../../scripts/lib/deploy/deploy.ts";
import { deployExitCode } from "../../../scripts/lib/deploy/exit-code.ts";
import { ExitCode } from "../../../scripts/lib/errors.ts";

const result = (outcome: JobOutcome, errorCode?: ExitCode): JobDeployResult => ({
  file: "x.nomad.hcl",
  jobId: "x",
  namespace: "default",
  type: "service",
  outcome,
  warnings: [],
  failures: [],
  durationMs: 1,
  error: errorCode === undefined ? undefined : { message: "m", details: [], exitCode: errorCode },
});

describe("deploy exit code", () => {
  it("0 when everything deployed, was registered or had nothing to do", () => {
    expect(deployExitCode([result("deployed"), result("unchanged"), result("registered")], { dryRun: false })).toBe(0);
    expect(deployExitCode([], { dryRun: false })).toBe(0);
  });

  it("--dry-run: 5 when any job has changes, 0 when none has", () => {
    expect(deployExitCode([result("unchanged"), result("changes-pending")], { dryRun: true })).toBe(ExitCode.changesPending);
    expect(deployExitCode([result("unchanged")], { dryRun: true })).toBe(ExitCode.ok);
  });

  it("3 when a deployment failed, even next to pending changes", () => {
    expect(deployExitCode([result("deployed"), result("failed", ExitCode.operation)], { dryRun: false })).toBe(3);
    expect(deployExitCode([result("changes-pending"), result("failed", ExitCode.operation)], { dryRun: true })).toBe(3);
    expect(deployExitCode([result("failed")], { dryRun: false })).toBe(3);
  });

  it("a bug outranks an operation failure, which outranks bad input", () => {
    expect(deployExitCode([result("failed", ExitCode.usage), result("failed", ExitCode.operation)], { dryRun: false })).toBe(3);
    expect(deployExitCode([result("failed", ExitCode.operation), result("failed", ExitCode.bug)], { dryRun: false })).toBe(1);
    expect(deployExitCode([result("failed", ExitCode.usage)], { dryRun: false })).toBe(2);
  });
});
