/** One exit code for a set of job results (README "Exit codes"). */
import { ExitCode } from "../errors.ts";
import type { JobDeployResult } from "./deploy.ts";

export function deployExitCode(results: JobDeployResult[], options: { dryRun: boolean }): ExitCode {
  const codes = results.map((r) => r.error?.exitCode).filter((c): c is ExitCode => c !== undefined);
  // a bug outranks an operation failure, which outranks bad input
  for (const code of [ExitCode.bug, ExitCode.operation, ExitCode.usage, ExitCode.interrupted]) {
    if (codes.includes(code)) return code;
  }
  if (codes.length) return ExitCode.operation;
  if (results.some((r) => r.outcome === "failed")) return ExitCode.operation;
  if (options.dryRun && results.some((r) => r.outcome === "changes-pending")) return ExitCode.changesPending;
  return ExitCode.ok;
}
