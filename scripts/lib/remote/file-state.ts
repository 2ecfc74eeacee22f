/**
 * What files look like on a node, for many paths in one command: their SHA-256 and
 * `stat` lines. Installing a set of files asks once per host instead of once per file.
 */
import { createHash } from "node:crypto";
import { shellJoin } from "./quote.ts";

const separator = "--- hashistack file state ---";

/** `stat -c` for the paths, one `path|fields` line each (missing files print nothing). */
export function statCommand(paths: string[], fields: string): string {
  return `${shellJoin(["stat", "-c", `%n|${fields}`, "--", ...paths])} 2>/dev/null`;
}

/** path → fields, from statCommand's output (paths here never contain `|`). */
export function parseStatLines(stdout: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const at = line.indexOf("|");
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

export interface FileState {
  sha256: string;
  /** mode (octal), owner and group names: `640 root consul` */
  meta: string;
}

/** One command: the checksums, then mode and owners, of every existing path. */
export function fileStateCommand(paths: string[]): string {
  const sums = `${shellJoin(["sha256sum", "--", ...paths])} 2>/dev/null`;
  return `${sums}; echo ${shellJoin([separator])}; ${statCommand(paths, "%a %U %G")}; true`;
}

export function parseFileStates(stdout: string): Map<string, FileState> {
  const at = stdout.indexOf(separator);
  if (at < 0) return new Map();
  const meta = parseStatLines(stdout.slice(at + separator.length));
  const states = new Map<string, FileState>();
  for (const line of stdout.slice(0, at).split("\n")) {
    const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    const path = match?.[2];
    const fields = path === undefined ? undefined : meta.get(path);
    if (match?.[1] && path !== undefined && fields !== undefined) states.set(path, { sha256: match[1], meta: fields });
  }
  return states;
}

/** Whether a node's file already is this content with this mode and owners (as the uploads set them). */
export function isCurrent(
  state: FileState | undefined,
  content: string | Buffer,
  options: { mode: number; owner?: string; group?: string },
): boolean {
  const owner = options.owner ?? "root";
  const meta = `${options.mode.toString(8)} ${owner} ${options.group ?? owner}`;
  return state?.meta === meta && state.sha256 === createHash("sha256").update(content).digest("hex");
}
