/**
 * `deployJobs`: parse → validate → plan → register (check-and-set) → follow,
 * for several job files. Every file is parsed and validated before anything is
 * registered, so one broken file never leaves a half-applied set; then jobs are
 * planned, registered and followed in parallel (bounded).
 */
import { readFile } from "node:fs/promises";
import pLimit from "p-limit";
import type { Reporter } from "../cli/output.ts";
import type { NomadClient, NomadJob } from "../clients/nomad.ts";
import { ExitCode, InputError, isUserError } from "../errors.ts";
import { discoverJobFiles } from "./discover.ts";
import { type AllocationFailure, type DiagnoseOptions, diagnoseFailures, formatFailures } from "./failures.ts";
import { followRegistration } from "./follow.ts";
import { type ParsedJob, parseJobFile, validateParsedJob } from "./parse.ts";
import { flattenMultiError, formatPlan, type PlanSummary, summarizePlan } from "./plan-summary.ts";
import { checkOwnership, registerJob } from "./register.ts";
import { checkUnknownVariables, declaredVariables, loadVariables, renderVariables } from "./variables.ts";

export interface JobSource {
  /** a name for messages: the file path, or any label */
  file: string;
  source: string;
}

export interface DeployRequest {
  /** job files or directories (expanded to *.nomad.hcl / *.nomad), or already-loaded sources */
  files: (string | JobSource)[];
  /** for jobs whose file names no namespace; a file naming another one is an error */
  namespace?: string;
  /** `--var` values (literal strings; they win over var files) */
  variables?: Record<string, string>;
  varFiles?: string[];
  /** plan only */
  dryRun?: boolean;
  /** parse and validate only: no plan, nothing registered (a CI validate stage) */
  validateOnly?: boolean;
  /** return after registration with the evaluation ID */
  detach?: boolean;
  /** per job, for following the evaluation and the deployment (default 10 min) */
  timeoutMs?: number;
  /** take over jobs that exist without the hashistack-deploy marker */
  force?: boolean;
  /** jobs planned/registered/followed at once (default 4) */
  concurrency?: number;
  /** lines of each failed task's stderr and stdout in the failure report (default 20; 0: none) */
  logLines?: number;
  /** the Nomad agent's log on a failed allocation's node, for callers that can reach nodes (bootstrap over SSH) */
  agentLog?: DiagnoseOptions["agentLog"];
}

export type JobOutcome =
  /** --validate-only: the file parses and the job validates */
  | "valid"
  /** the plan shows no difference: nothing registered */
  | "unchanged"
  /** --dry-run and the plan shows changes */
  | "changes-pending"
  /** --detach: registered, not followed */
  | "registered"
  /** registered and the deployment (or allocations) succeeded */
  | "deployed"
  /** registration failed, or the deployment failed or timed out */
  | "failed";

export interface JobDeployResult {
  file: string;
  jobId: string;
  namespace: string;
  type: NomadJob["Type"];
  outcome: JobOutcome;
  plan?: PlanSummary;
  warnings: string[];
  evalId?: string;
  deploymentId?: string;
  /** the job version registered */
  version?: number;
  message?: string;
  failures: AllocationFailure[];
  autoRevert?: string;
  error?: { message: string; details: string[]; hint?: string; exitCode: ExitCode };
  durationMs: number;
}

export async function deployJobs(nomad: NomadClient, request: DeployRequest, reporter: Reporter): Promise<JobDeployResult[]> {
  const sources = await loadSources(request.files);
  const variables = await loadVariables(request.varFiles ?? [], request.variables ?? {});
  checkUnknownVariables(
    variables,
    await Promise.all(sources.map(async (s) => ({ file: s.file, names: await declaredVariables(s.file, s.source) }))),
  );
  const varText = renderVariables(variables);
  const limit = pLimit(request.concurrency ?? 4);

  // phase 1: every file parses and validates, or nothing is registered
  const parsedOrErrors = await Promise.all(
    sources.map((s) =>
      limit(async () => {
        try {
          const parsed = await parseJobFile(nomad, s.file, s.source, varText, request.namespace, variables.origins);
          await validateParsedJob(nomad, parsed);
          return parsed;
        } catch (error) {
          if (error instanceof InputError) return error;
          throw error;
        }
      }),
    ),
  );
  const inputErrors = parsedOrErrors.filter((p): p is InputError => p instanceof InputError);
  if (inputErrors.length === 1) throw inputErrors[0];
  if (inputErrors.length > 1) {
    throw new InputError(`${inputErrors.length} job files are invalid; nothing was deployed.`, {
      details: inputErrors.flatMap((e) => [e.message, ...e.details.map((d) => `  ${d}`)]),
    });
  }
  const parsed = parsedOrErrors as ParsedJob[];
  const seen = new Map<string, string>();
  for (const p of parsed) {
    const key = `${p.namespace}/${p.job.ID}`;
    const other = seen.get(key);
    if (other) throw new InputError(`Job '${p.job.ID}' (namespace ${p.namespace}) is defined by both ${other} and ${p.file}.`);
    seen.set(key, p.file);
  }
  for (const p of parsed) for (const w of p.warnings) reporter.warn(`${p.file}: ${w}`);
  if (request.validateOnly) {
    return parsed.map((p) => {
      reporter.success(`${p.file}: job "${p.job.ID}" (${p.namespace}) is valid`);
      return {
        file: p.file,
        jobId: p.job.ID,
        namespace: p.namespace,
        type: p.job.Type ?? "service",
        outcome: "valid",
        warnings: p.warnings,
        failures: [],
        durationMs: 0,
      };
    });
  }

  // phase 2: plan, register and follow each job
  const deadlineMs = request.timeoutMs ?? 600_000;
  return Promise.all(
    parsed.map((p) =>
      limit(() => deployOne(nomad, p, { ...request, timeoutMs: deadlineMs }, varText, variables.flags, reporter)),
    ),
  );
}

async function loadSources(files: (string | JobSource)[]): Promise<JobSource[]> {
  const loaded = files.filter((f): f is JobSource => typeof f !== "string");
  const paths = files.filter((f): f is string => typeof f === "string");
  const discovered = paths.length ? await discoverJobFiles(paths) : [];
  if (!discovered.length && !loaded.length) await discoverJobFiles([]); // throws "no job files"
  const read = await Promise.all(
    discovered.map(async (file) => ({
      file,
      source: await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
        throw new InputError(`Cannot read job file ${file}: ${error.code ?? error.message}.`);
      }),
    })),
  );
  return [...read, ...loaded];
}

async function deployOne(
  nomad: NomadClient,
  parsed: ParsedJob,
  request: DeployRequest & { timeoutMs: number },
  varText: string,
  flags: Record<string, string>,
  reporter: Reporter,
): Promise<JobDeployResult> {
  const started = Date.now();
  const { job } = parsed;
  const result: JobDeployResult = {
    file: parsed.file,
    jobId: job.ID,
    namespace: parsed.namespace,
    type: job.Type ?? "service",
    outcome: "failed",
    warnings: [...parsed.warnings],
    failures: [],
    durationMs: 0,
  };
  const label = `job "${job.ID}"${parsed.namespace !== "default" ? ` (${parsed.namespace})` : ""}`;
  try {
    await checkOwnership(nomad, parsed, request.force ?? false);
    const plan = summarizePlan(await nomad.planJob(job));
    result.plan = plan;
    result.warnings.push(...plan.warnings);
    for (const line of formatPlan(job.ID, plan)) reporter.info(line);
    for (const w of plan.warnings) reporter.warn(`${label}: ${w}`);
    if (!plan.changes) {
      result.outcome = "unchanged";
      result.message = "no changes";
      return result;
    }
    if (request.dryRun) {
      result.outcome = "changes-pending";
      result.message = "changes pending (dry run)";
      return result;
    }
    const registered = await registerJob(nomad, parsed, plan.jobModifyIndex, { variables: varText, flags });
    result.evalId = registered.EvalID;
    for (const w of registered.Warnings ? flattenMultiError(registered.Warnings) : []) {
      result.warnings.push(w);
      reporter.warn(`${label}: ${w}`);
    }
    const current = await nomad.job(job.ID, parsed.namespace);
    if (current && current.JobModifyIndex === registered.JobModifyIndex) result.version = current.Version;
    if (request.detach || !registered.EvalID) {
      result.outcome = "registered";
      result.message = registered.EvalID
        ? `registered, evaluation ${registered.EvalID}`
        : "registered (no evaluation: periodic or parameterized job)";
      reporter.success(`${label}: ${result.message}`);
      return result;
    }
    const step = reporter.step(`${label}: version ${result.version ?? "?"} deploying`);
    const outcome = await followRegistration(nomad, {
      jobId: job.ID,
      namespace: parsed.namespace,
      type: result.type,
      version: result.version,
      evalId: registered.EvalID,
      deadline: started + request.timeoutMs,
      progress: (detail) => step.update(detail),
    });
    result.deploymentId = outcome.deploymentId;
    result.autoRevert = outcome.autoRevert;
    result.message = outcome.message;
    if (outcome.status === "successful") {
      result.outcome = "deployed";
      step.done(outcome.message || "deployed");
      return result;
    }
    step.fail(
      outcome.status === "timeout"
        ? `timed out after ${Math.round(request.timeoutMs / 1000)}s: ${outcome.message}`
        : outcome.message,
    );
    if (outcome.autoRevert) reporter.warn(`${label}: ${outcome.autoRevert}`);
    // which allocations, why, and what their tasks and agents said: in the error, where CI reports look
    result.failures = await diagnoseFailures(nomad, outcome.failures, {
      namespace: parsed.namespace,
      logLines: request.logLines,
      agentLog: request.agentLog,
    });
    result.error = {
      message: `${label} ${outcome.status === "timeout" ? "did not finish in time" : "failed"}: ${outcome.message}`,
      details: formatFailures(result.failures),
      exitCode: ExitCode.operation,
    };
    return result;
  } catch (error) {
    result.outcome = "failed";
    if (isUserError(error)) {
      result.error = { message: error.message, details: error.details, hint: error.hint, exitCode: error.exitCode };
    } else {
      result.error = { message: error instanceof Error ? error.message : String(error), details: [], exitCode: ExitCode.bug };
    }
    return result;
  } finally {
    result.durationMs = Date.now() - started;
  }
}
