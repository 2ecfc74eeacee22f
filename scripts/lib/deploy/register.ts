/** Ownership check and check-and-set registration with the job source stored as the submission. */
import { ApiError } from "../clients/http.ts";
import type { NomadClient, NomadJob, NomadRegisterResponse } from "../clients/nomad.ts";
import { OperationError } from "../errors.ts";
import { managedByKey, managedByValue, type ParsedJob } from "./parse.ts";

/** The existing job, if any; refuses one that something else manages unless forced. */
export async function checkOwnership(nomad: NomadClient, parsed: ParsedJob, force: boolean): Promise<NomadJob | undefined> {
  const existing = await nomad.job(parsed.job.ID, parsed.namespace);
  const owner = existing?.Meta?.[managedByKey];
  if (existing && owner !== managedByValue && !force) {
    throw new OperationError(
      `Job '${parsed.job.ID}' in namespace ${parsed.namespace} exists and is not managed by hashistack-deploy (${owner ? `meta ${managedByKey} = "${owner}"` : `no meta ${managedByKey}`}); not overwriting it (${parsed.file}).`,
      { hint: "Pass --force to take it over: it will carry the marker from then on." },
    );
  }
  return existing;
}

export interface Submission {
  /** rendered var-file text (files and flags merged) */
  variables: string;
  flags: Record<string, string>;
}

/**
 * Register only if the job is still at the index the plan saw (`EnforceIndex`):
 * anything registered in between makes this fail instead of being overwritten.
 */
export async function registerJob(
  nomad: NomadClient,
  parsed: ParsedJob,
  jobModifyIndex: number,
  submission: Submission,
): Promise<NomadRegisterResponse> {
  try {
    return await nomad.registerJob({
      Job: parsed.job,
      EnforceIndex: true,
      JobModifyIndex: jobModifyIndex,
      Submission: {
        Source: parsed.source,
        Format: "hcl2",
        Variables: submission.variables,
        VariableFlags: submission.flags,
      },
    });
  } catch (error) {
    if (error instanceof ApiError && /Enforcing job modify index/i.test(error.apiMessage)) {
      throw new OperationError(
        `Job '${parsed.job.ID}' in namespace ${parsed.namespace} changed after it was planned; not registering (${parsed.file}).`,
        {
          details: [error.apiMessage],
          hint: "Someone else registered or removed it meanwhile: re-run the deploy to plan against the current version.",
        },
      );
    }
    throw error;
  }
}
