/**
 * Which source each HashiCorp binary comes from: HashiCorp's verified releases or the
 * local Go build cache. `install.method: auto` (the default) takes a release already
 * verified into the cache as it is, and for the rest asks the release server once, with
 * a short timeout: when it serves the release's SHA256SUMS they are downloaded (and
 * verified: a bad signature or checksum is an error, never a reason to build instead),
 * otherwise they come from the build cache. Offline machines pay the probe, not a wait.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../errors.ts";
import { binaryPath } from "./build.ts";
import type { ToolSpec } from "./catalog.ts";
import { releaseBinaryPath, releaseFiles, signingKeyringPath, type ReleaseSource } from "./releases.ts";

export type InstallMethod = "auto" | "upload" | "download";
export type BinarySource = "release" | "build";

/** long enough for a TLS handshake across the world, short enough that an offline run barely notices */
export const defaultProbeTimeoutMs = 3000;

export interface Wanted {
  name: string;
  version: string;
}

export type ProbeOutcome = { answers: true; ms: number } | { answers: false; ms: number; reason: string };

export interface SourcePlan {
  /** tool name → where its binary comes from */
  sources: Record<string, BinarySource>;
  /** the one line a run prints: which source, and why */
  line: string;
}

/** is a verified release of this tool already in the cache (release.json written after verification) */
export function releaseCached(tool: Wanted, root?: string): boolean {
  const binary = releaseBinaryPath(tool.name, tool.version, root);
  return existsSync(binary) && existsSync(join(binary, "..", "release.json"));
}

/**
 * GET each URL (small files: a SHA256SUMS, the signing key) within `timeoutMs` overall;
 * the server answers when every one is served with HTTP 200.
 */
export async function probeUrls(urls: string[], timeoutMs = defaultProbeTimeoutMs): Promise<ProbeOutcome> {
  const started = Date.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const elapsed = () => Date.now() - started;
  try {
    const reasons = await Promise.all(
      urls.map(async (url): Promise<string | undefined> => {
        try {
          const response = await fetch(url, { signal: abort.signal, redirect: "follow" });
          await response.arrayBuffer();
          return response.status === 200 ? undefined : `${url} answered HTTP ${response.status}`;
        } catch (error) {
          if (abort.signal.aborted) return `${url} sent no answer within ${formatMs(timeoutMs)}`;
          const cause = (error as { cause?: { code?: string; message?: string } }).cause;
          const code = cause?.code;
          return `${url}: ${code ? `${networkErrors[code] ?? "network error"} (${code})` : (cause?.message ?? errorMessage(error))}`;
        }
      }),
    );
    const reason = reasons.find((r) => r !== undefined);
    return reason ? { answers: false, ms: elapsed(), reason } : { answers: true, ms: elapsed() };
  } finally {
    clearTimeout(timer);
  }
}

const networkErrors: Record<string, string> = {
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENETUNREACH: "network unreachable",
  EHOSTUNREACH: "host unreachable",
};

/** What to probe for the tools still missing: the first one's SHA256SUMS, and the signing key unless its keyring is cached. */
export function probeTargets(missing: Wanted[], source: ReleaseSource, root?: string): string[] {
  const first = missing[0];
  if (!first) return [];
  const urls = [releaseFiles(source.releasesUrl, first.name, first.version).sums.url];
  if (!existsSync(signingKeyringPath(source.fingerprint, root))) urls.push(source.signingKeyUrl);
  return urls;
}

/**
 * The source of every wanted tool. `upload` and `download` are what they say; `auto` uses
 * cached releases, probes (through `probe`, only when something is missing) and decides the
 * rest by the answer.
 */
export async function planBinarySources(
  method: InstallMethod,
  wanted: Wanted[],
  options: {
    releasesUrl: string;
    isReleaseCached: (tool: Wanted) => boolean;
    /** only for the wording: whether the missing builds are there or will be compiled now */
    isBuildCached?: (tool: Wanted) => boolean;
    probe: (missing: Wanted[]) => Promise<ProbeOutcome>;
  },
): Promise<SourcePlan> {
  const all = (source: BinarySource) => Object.fromEntries(wanted.map((t) => [t.name, source]));
  if (method === "upload") {
    return { sources: all("build"), line: "binaries: local builds (install.method: upload)" };
  }
  if (method === "download") {
    return {
      sources: all("release"),
      line: `binaries: HashiCorp releases from ${options.releasesUrl}, signature and checksum verified (install.method: download)`,
    };
  }
  const cached = wanted.filter((t) => options.isReleaseCached(t));
  const missing = wanted.filter((t) => !options.isReleaseCached(t));
  const sources = Object.fromEntries(cached.map((t) => [t.name, "release" as BinarySource]));
  if (!missing.length) {
    return { sources, line: "binaries: HashiCorp releases, verified earlier and cached (install.method: auto)" };
  }
  const answer = await options.probe(missing);
  const names = (tools: Wanted[]) => tools.map((t) => t.name).join(", ");
  const alsoCached = cached.length ? `; ${names(cached)} verified earlier and cached` : "";
  if (answer.answers) {
    for (const tool of missing) sources[tool.name] = "release";
    return {
      sources,
      line: `binaries: HashiCorp releases, signature and checksum verified — ${options.releasesUrl} answered in ${formatMs(answer.ms)}${alsoCached} (install.method: auto)`,
    };
  }
  for (const tool of missing) sources[tool.name] = "build";
  const toBuild = missing.filter((t) => !options.isBuildCached?.(t));
  const building = toBuild.length ? `building ${names(toBuild)} now, ~25–35 min cold on 2 cores` : "already in the build cache";
  return {
    sources,
    line: `binaries: local builds for ${names(missing)} (${building}) — the release server did not answer: ${answer.reason}${alsoCached} (install.method: auto; set upload or download to choose)`,
  };
}

/** The plan for the prepare stage, with the real caches and the real probe. */
export function binarySourcePlan(
  method: InstallMethod,
  wanted: ToolSpec[],
  source: ReleaseSource,
  probeTimeoutMs = defaultProbeTimeoutMs,
): Promise<SourcePlan> {
  const specs = new Map(wanted.map((t) => [t.name, t]));
  return planBinarySources(method, wanted, {
    releasesUrl: source.releasesUrl,
    isReleaseCached: (tool) => releaseCached(tool),
    isBuildCached: (tool) => {
      const spec = specs.get(tool.name);
      return spec !== undefined && existsSync(binaryPath(spec));
    },
    probe: (missing) => probeUrls(probeTargets(missing, source), probeTimeoutMs),
  });
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}
