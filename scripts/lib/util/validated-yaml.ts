/**
 * Load a YAML file and validate it with a zod schema. Every problem names the
 * file, line, field path, what was expected and what was found, so a typo in a
 * 200-line config is found without guessing.
 */
import { readFile } from "node:fs/promises";
import { isNode, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { InputError } from "../errors.ts";

export interface ValidationProblem {
  path: string;
  line?: number;
  column?: number;
  message: string;
}

export async function loadYamlFile<Schema extends z.ZodType>(
  file: string,
  schema: Schema,
  what: string,
  hint?: string,
): Promise<z.output<Schema>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      `Cannot read ${what.toLowerCase()} ${file}: ${code === "ENOENT" ? "no such file" : (error as Error).message}.`,
      {
        hint,
      },
    );
  }
  return parseYamlText(text, file, schema, what, hint);
}

export function parseYamlText<Schema extends z.ZodType>(
  text: string,
  file: string,
  schema: Schema,
  what: string,
  hint?: string,
): z.output<Schema> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    const details = document.errors.map((e) => {
      const pos = e.linePos?.[0];
      return `${file}${pos ? `:${pos.line}:${pos.col}` : ""}: ${e.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "")}`;
    });
    throw new InputError(`${what} ${file} is not valid YAML.`, { details, hint });
  }
  const data = document.toJS() ?? {};
  const result = schema.safeParse(data);
  if (result.success) return result.data;

  const problems: ValidationProblem[] = result.error.issues.map((issue) => {
    // an unknown key is reported on its parent; point at the key's own line
    const located = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0] ?? ""] : issue.path;
    const node = locate(document, located.map(String));
    const position = node?.range ? lineCounter.linePos(node.range[0]) : undefined;
    return {
      path: formatPath(issue.path),
      line: position?.line,
      column: position?.col,
      message: describeIssue(issue, valueAt(data, issue.path)),
    };
  });
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  throw new InputError(`${what} ${file} has ${problems.length} problem${problems.length === 1 ? "" : "s"}.`, {
    details: problems.map((p) => `${file}${p.line ? `:${p.line}:${p.column}` : ""} ${p.path}: ${p.message}`),
    hint,
  });
}

/** The YAML node for a path, or the nearest existing parent (for missing keys). */
function locate(document: ReturnType<typeof parseDocument>, path: string[]) {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = document.getIn(path.slice(0, depth), true);
    if (isNode(node)) return node;
  }
  return isNode(document.contents) ? document.contents : undefined;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = data;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${String(value)}`;
}

function describeIssue(issue: z.core.$ZodIssue, found: unknown): string {
  switch (issue.code) {
    case "unrecognized_keys":
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")} (check the spelling; allowed fields are listed in cluster.example.yaml)`;
    case "invalid_type":
      return `expected ${issue.expected}, found ${describeValue(found)}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, found ${describeValue(found)}`;
    case "custom":
      // custom checks usually name the values they compare; add "found" only when it says more
      return found === undefined || typeof found === "object" || issue.message.includes(String(found))
        ? issue.message
        : `${issue.message}, found ${describeValue(found)}`;
    default:
      return `${issue.message}, found ${describeValue(found)}`;
  }
}
