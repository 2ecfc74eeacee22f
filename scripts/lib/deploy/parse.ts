/** HCL2 job files → job JSON through the Nomad parse endpoint, then server-side validation. */
import { ApiError } from "../clients/http.ts";
import type { NomadClient, NomadJob } from "../clients/nomad.ts";
import { InputError } from "../errors.ts";
import { flattenMultiError } from "./plan-summary.ts";

/** Job meta key that marks jobs this command manages ("." and "-" are fine in job meta keys). */
export const managedByKey = "hashistack.managed-by";
export const managedByValue = "hashistack-deploy";

export interface ParsedJob {
  file: string;
  source: string;
  job: NomadJob;
  namespace: string;
  warnings: string[];
}

/**
 * Parse one job file with the rendered var-file text. Syntax errors and bad
 * variable values come back naming `input.hcl`; they are rewritten to the real file.
 */
export async function parseJobFile(
  nomad: NomadClient,
  file: string,
  source: string,
  variables: string,
  namespace: string | undefined,
  origins: Record<string, string> = {},
): Promise<ParsedJob> {
  let job: NomadJob;
  try {
    // not canonicalized: a job that names no namespace comes back without one, so --namespace can fill it in
    job = await nomad.parseJob({ JobHCL: source, Variables: variables || undefined, Canonicalize: false }, namespace);
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) throw parseError(file, error.apiMessage, origins);
    throw error;
  }
  const declared = (job.Namespace as string | null | undefined) || undefined;
  if (declared && namespace && declared !== namespace) {
    throw new InputError(`${file}: job '${job.ID}' sets namespace "${declared}" but --namespace is ${namespace}.`, {
      hint: "Drop one of them: the job file's namespace or the flag.",
    });
  }
  job.Namespace = declared ?? namespace ?? "default";
  job.Meta = { ...(job.Meta ?? {}), [managedByKey]: managedByValue };
  return { file, source, job, namespace: job.Namespace, warnings: [] };
}

/** `Failed to parse job: input.hcl:2,9-3,1: Invalid expression; …` → `<file>:2:9: Invalid expression; …` */
export function parseError(file: string, apiMessage: string, origins: Record<string, string> = {}): InputError {
  // a value that does not fit the declared type is reported at a position in the var-file text we rendered
  const badValue = /The value for ([A-Za-z0-9_-]+) is not compatible with the variable's type constraint: ([^\n]*)/.exec(
    apiMessage,
  );
  if (badValue) {
    const [, name, why] = badValue as unknown as [string, string, string];
    return new InputError(`${file}: the value for variable '${name}' does not fit its type: ${why.replace(/\.$/, "")}.`, {
      details: [`the value comes from ${origins[name] ?? "the variables"}`],
    });
  }
  const body = apiMessage.replace(/^Failed to parse job:\s*/, "").replace(/^unable to parse var content:\s*/, "");
  const lines = body
    .split(/\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.replace(/input\.hcl:(\d+),(\d+)(?:-[\d,]+)?:/g, `${file}:$1:$2:`));
  const inVarContent = /unable to parse var content/.test(apiMessage);
  return new InputError(
    inVarContent ? `The variables for ${file} do not parse (a --var value or a var file).` : `${file} is not a valid job file.`,
    {
      details: inVarContent ? lines.map((l) => l.replace(file, "variables")) : lines,
      hint: /Unsupported attribute; This object does not have an attribute named/.test(body)
        ? 'A variable the job uses is not declared: add a variable "name" {} block.'
        : undefined,
    },
  );
}

/** `/v1/validate/job`: errors stop the deploy, warnings are returned for printing. */
export async function validateParsedJob(nomad: NomadClient, parsed: ParsedJob): Promise<void> {
  const result = await nomad.validateJob(parsed.job);
  const errors = (result.ValidationErrors ?? []).flatMap((e) => flattenMultiError(e));
  if (errors.length) {
    throw new InputError(`${parsed.file}: job '${parsed.job.ID}' is not valid.`, { details: [...new Set(errors)] });
  }
  if (result.Warnings) parsed.warnings.push(...flattenMultiError(result.Warnings));
}
