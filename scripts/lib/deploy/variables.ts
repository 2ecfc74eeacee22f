/**
 * Job variables. `POST /v1/jobs/parse` reads `Variables` as var-file text and
 * ignores `VariableFlags`, and one var-file body may set a name only once — so
 * var files and `--var` flags are merged here (later files win, flags win over
 * files) and rendered back into one var-file text.
 */
import { readFile } from "node:fs/promises";
import { parse as parseHcl } from "@cdktf/hcl2json";
import { InputError } from "../errors.ts";

export type VariableValue = string | number | boolean | null | VariableValue[] | { [key: string]: VariableValue };

export interface VariableSet {
  /** merged values, flags last */
  values: Record<string, VariableValue>;
  /** where each value came from, for error messages */
  origins: Record<string, string>;
  /** the `--var` flags as given (stored with the job submission) */
  flags: Record<string, string>;
}

const namePattern = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `--var k=v` pairs; the value is a literal string (Nomad converts it to the declared type). */
export function parseVarFlags(pairs: string[]): Record<string, string> {
  const flags: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new InputError(`--var '${pair}' must look like name=value.`);
    const name = pair.slice(0, eq);
    if (!namePattern.test(name)) throw new InputError(`--var '${pair}': '${name}' is not a valid variable name.`);
    flags[name] = pair.slice(eq + 1);
  }
  return flags;
}

export async function loadVariables(varFiles: string[], flagPairs: string[] | Record<string, string>): Promise<VariableSet> {
  const values: Record<string, VariableValue> = {};
  const origins: Record<string, string> = {};
  for (const file of varFiles) {
    const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new InputError(`Cannot read var file ${file}: ${error.code ?? error.message}.`);
    });
    let parsed: Record<string, unknown>;
    try {
      parsed = (await parseHcl(file, text)) as Record<string, unknown>;
    } catch (error) {
      throw new InputError(`Var file ${file} is not valid HCL.`, { details: [hclErrorText(error)] });
    }
    for (const [name, value] of Object.entries(parsed)) {
      values[name] = value as VariableValue;
      origins[name] = file;
    }
  }
  const flags = Array.isArray(flagPairs) ? parseVarFlags(flagPairs) : flagPairs;
  for (const [name, value] of Object.entries(flags)) {
    values[name] = value;
    origins[name] = `--var ${name}`;
  }
  return { values, origins, flags };
}

/** Var-file HCL for the merged values. Flag values are literals; var-file strings keep their template escapes. */
export function renderVariables(set: Pick<VariableSet, "values" | "origins">): string {
  // sorted: the same values always give the same text (it is stored with the job submission)
  return Object.entries(set.values)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name} = ${renderValue(value, set.origins[name]?.startsWith("--var") ?? false)}\n`)
    .join("");
}

function renderValue(value: VariableValue, literal: boolean): string {
  if (value === null) return "null";
  if (typeof value === "string") return literal ? hclLiteralString(value) : hclTemplateString(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map((v) => renderValue(v, literal)).join(", ")}]`;
  return `{ ${Object.entries(value)
    .map(([k, v]) => `${hclLiteralString(k)} = ${renderValue(v, literal)}`)
    .join(", ")} }`;
}

/** A quoted HCL string whose content is exactly `text`: escapes, and no interpolation. */
export function hclLiteralString(text: string): string {
  return `"${escapeQuoted(text)
    .replace(/\$\{/g, () => "$${")
    .replace(/%\{/g, () => "%%{")}"`;
}

/**
 * hcl2json decodes backslash escapes but keeps template escapes (`$${`, `%%{`) as
 * written, so a var-file string is re-quoted without touching them.
 */
function hclTemplateString(text: string): string {
  return `"${escapeQuoted(text)}"`;
}

function escapeQuoted(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
}

/** Names of the `variable "…"` blocks in a job file, or undefined when the file does not parse (Nomad reports that). */
export async function declaredVariables(file: string, source: string): Promise<Set<string> | undefined> {
  try {
    const parsed = (await parseHcl(file, source)) as { variable?: Record<string, unknown> };
    return new Set(Object.keys(parsed.variable ?? {}));
  } catch {
    return undefined;
  }
}

/**
 * A value no job declares is a typo or a stale CI variable: Nomad would ignore it
 * silently, so it is an error here. (A value only some of the jobs declare is fine:
 * one var file may serve several jobs.)
 */
export function checkUnknownVariables(set: VariableSet, declared: { file: string; names: Set<string> | undefined }[]): void {
  if (declared.some((d) => d.names === undefined)) return;
  const known = new Set(declared.flatMap((d) => [...(d.names ?? [])]));
  const unknown = Object.keys(set.values).filter((name) => !known.has(name));
  if (unknown.length === 0) return;
  throw new InputError(
    `Unknown variable${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `'${n}'`).join(", ")}: no job file declares ${unknown.length > 1 ? "them" : "it"}.`,
    {
      details: [
        ...unknown.map((n) => `${n} is set by ${set.origins[n]}`),
        `job files: ${declared.map((d) => `${d.file} (${[...(d.names ?? [])].sort().join(", ") || "no variables"})`).join("; ")}`,
      ],
      hint: 'Declare it in the job file (variable "name" { type = string }) or drop the value.',
    },
  );
}

function hclErrorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^parse config: \[|\]$/g, "");
}
