/**
 * Build a Go tool from the module proxy into `~/.cache/hashistack/bin/<tool>/<version>/`.
 *
 * The HashiCorp main modules carry `replace github.com/hashicorp/<x>/api => ./api`
 * directives, and module zips omit nested modules, so `go install tool@version`
 * is refused. We download the module, drop the local-path replaces (the module's
 * go.mod already requires the published versions of those submodules), and build.
 * Pointing the replaces at the same commit would be closer, but the proxy here
 * answers 403 for commit queries, so the published versions are what we can get.
 */
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import type { StartActivity } from "../cli/output.ts";
import { OperationError } from "../errors.ts";
import { ensureDebianPackages } from "../setup/debian-packages.ts";
import type { ToolSpec } from "./catalog.ts";
import { withLock } from "./lock.ts";

export function cacheRoot(): string {
  return process.env.HASHISTACK_CACHE ?? join(homedir(), ".cache", "hashistack");
}

export function binaryPath(tool: Pick<ToolSpec, "name" | "version" | "cgo" | "tags">, root = cacheRoot()): string {
  // a cgo build or one with other tags is a different artifact: it must not be mistaken for a cached plain one
  const variant = [tool.version, ...(tool.cgo ? ["cgo"] : []), ...(tool.tags ?? [])].join("-");
  return join(root, "bin", tool.name, variant, tool.name);
}

export interface BuildRecord {
  tool: string;
  version: string;
  module: string;
  path: string;
  goVersion: string;
  seconds: number;
  droppedReplaces: string[];
  tags: string[];
  sizeBytes: number;
  builtAt: string;
}

export interface EnsureResult {
  path: string;
  built: boolean;
  record?: BuildRecord;
}

interface GoModJson {
  Replace?: { Old: { Path: string }; New: { Path: string; Version?: string } }[];
}

export async function ensureBinary(
  tool: ToolSpec,
  options: { force?: boolean; log?: (line: string) => void; activity?: StartActivity } = {},
): Promise<EnsureResult> {
  const target = binaryPath(tool);
  if (!options.force && existsSync(target)) return { path: target, built: false };
  return withLock(join(cacheRoot(), "locks", `${tool.name}-${tool.version}`), async () => {
    if (!options.force && existsSync(target)) return { path: target, built: false }; // built while we waited
    const activity = options.activity?.(`building ${tool.name} ${tool.version} from source`);
    try {
      const record = await build(tool, target, options.log ?? (() => {}));
      activity?.done(`built in ${record.seconds}s`);
      return { path: target, built: true, record };
    } catch (error) {
      activity?.fail();
      throw error;
    }
  });
}

async function build(tool: ToolSpec, target: string, log: (line: string) => void): Promise<BuildRecord> {
  await requireGo();
  if (tool.cgo) await ensureCCompiler(log);
  const started = Date.now();
  const ref = `${tool.module}@v${tool.version}`;
  log(`downloading ${ref} from the Go module proxy`);
  const downloadEnv = tool.pinnedSum ? { ...process.env, GONOSUMDB: tool.module } : process.env;
  const download = await $({ quiet: true, nothrow: true, env: downloadEnv })`go mod download -json ${ref}`;
  const info = safeJson(download.stdout) as { Dir?: string; Error?: string; Sum?: string } | undefined;
  if (download.exitCode !== 0 || !info?.Dir) {
    throw new OperationError(`Cannot download ${ref}: ${info?.Error ?? download.stderr.trim()}`, {
      hint: "Check that the Go module proxy is reachable (go env GOPROXY) and that the version exists.",
    });
  }
  if (tool.pinnedSum && info.Sum !== tool.pinnedSum) {
    throw new OperationError(`${ref} does not match its pinned checksum (got ${info.Sum}, pinned ${tool.pinnedSum}).`, {
      hint: "The module proxy served different content than when the pin was recorded; do not build it. Report this.",
    });
  }
  const work = await mkdtemp(join(tmpdir(), `hashistack-build-${tool.name}-`));
  try {
    const src = join(work, "src");
    await cp(info.Dir, src, { recursive: true });
    await $({ quiet: true })`chmod -R u+w ${src}`;
    const mod = JSON.parse((await $({ cwd: src, quiet: true })`go mod edit -json`).stdout) as GoModJson;
    const local = (mod.Replace ?? []).filter((r) => r.New.Path.startsWith("."));
    for (const replace of local) {
      await $({ cwd: src, quiet: true })`go mod edit -dropreplace=${replace.Old.Path}`;
      const pinned = tool.submodules?.[replace.Old.Path];
      if (pinned) await $({ cwd: src, quiet: true })`go mod edit -require=${replace.Old.Path}@${pinned}`;
    }
    if (local.length) log(`using published submodules instead of local replaces: ${local.map((r) => r.Old.Path).join(", ")}`);
    for (const [file, content] of Object.entries(tool.placeholders ?? {})) {
      await mkdir(join(src, file, ".."), { recursive: true });
      await writeFile(join(src, file), content);
    }
    log(`compiling ${tool.name} ${tool.version} (this takes minutes on 2 cores)`);
    const output = join(work, tool.name);
    const compile = await $({
      cwd: src,
      quiet: true,
      nothrow: true,
      // GOWORK=off: a module's own go.work (Prometheus ships one) names directories its zip lacks
      env: { ...process.env, CGO_ENABLED: tool.cgo ? "1" : "0", GOFLAGS: "-mod=mod -buildvcs=false", GOWORK: "off" },
    })`go build -trimpath ${`-ldflags=${["-s", ...(tool.ldflags ?? [])].join(" ")}`} ${tool.tags?.length ? [`-tags=${tool.tags.join(",")}`] : []} -o ${output} ${tool.package}`;
    if (compile.exitCode !== 0) {
      throw new OperationError(`Building ${ref} failed (exit ${compile.exitCode}).`, {
        details: compile.stderr.trim().split("\n").slice(-15),
        hint: "The tail of the Go compiler's output is above; a newer Go or a dependency drift is the usual cause.",
      });
    }
    await mkdir(join(target, ".."), { recursive: true });
    await chmod(output, 0o755);
    await rename(output, target).catch(async () => {
      await cp(output, target); // across filesystems
    });
    const goVersion = (await $({ quiet: true })`go env GOVERSION`).stdout.trim();
    const record: BuildRecord = {
      tool: tool.name,
      version: tool.version,
      module: tool.module,
      path: target,
      goVersion,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      droppedReplaces: local.map((r) => r.Old.Path),
      tags: tool.tags ?? [],
      sizeBytes: (await stat(target)).size,
      builtAt: new Date().toISOString(),
    };
    await writeFile(join(target, "..", "build.json"), `${JSON.stringify(record, null, 2)}\n`);
    return record;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function readBuildRecord(tool: ToolSpec): Promise<BuildRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(binaryPath(tool), "..", "build.json"), "utf8")) as BuildRecord;
  } catch {
    return undefined;
  }
}

async function requireGo(): Promise<void> {
  const found = await $({ quiet: true, nothrow: true })`go version`;
  if (found.exitCode !== 0) {
    throw new OperationError("Go is needed to build the HashiCorp binaries and was not found on PATH.", {
      hint: "Install Go 1.25 or newer (https://go.dev/dl/) or put prebuilt binaries in ~/.cache/hashistack/bin/<tool>/<version>/.",
    });
  }
}

/** cgo builds need gcc and the C library headers; Debian's packages are installed when missing. */
async function ensureCCompiler(log: (line: string) => void): Promise<void> {
  const found = await $({ quiet: true, nothrow: true })`cc --version`;
  if (found.exitCode === 0) return;
  await ensureDebianPackages(["gcc", "libc6-dev"], log);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
