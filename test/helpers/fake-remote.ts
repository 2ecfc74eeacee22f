/**
 * An in-memory node for unit tests of the stages (no root, no SSH): it keeps
 * files, directories and services, follows RemoteHost's upload contract
 * (unchanged / metadata-fixed / uploaded) and logs every operation in order.
 * Commands answer exit 0 with no output unless `respond` says otherwise; the
 * file-state probe of installFiles (remote/file-state.ts) answers from its files.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Duplex } from "node:stream";
import type {
  DirectorySpec,
  Remote,
  RunOptions,
  RunResult,
  ServiceHandle,
  UploadOptions,
  UploadOutcome,
} from "../../scripts/lib/remote/remote.ts";
import { factsEnd, probedCommands } from "../../scripts/lib/stages/prepare.ts";

export interface FakeFile {
  content: Buffer;
  mode: number;
  owner: string;
  group: string;
}

export interface FakeService {
  active: boolean;
  enabled: boolean;
  binaryReplaced: boolean;
}

export class FakeRemote implements Remote {
  readonly files = new Map<string, FakeFile>();
  readonly dirs = new Map<string, DirectorySpec>();
  readonly services = new Map<string, FakeService>();
  /** every operation, in order: "run …", "root …", "upload /path", "mkdir /path", "start consul", … */
  readonly log: string[] = [];
  respond: (command: string, asRoot: boolean) => Partial<RunResult> | undefined = () => undefined;

  constructor(readonly name: string) {}

  async run(command: string, options: RunOptions = {}): Promise<RunResult> {
    return this.answer(command, false, options);
  }

  async runAsRoot(command: string, options: RunOptions = {}): Promise<RunResult> {
    return this.answer(command, true, options);
  }

  private answer(command: string, asRoot: boolean, options: RunOptions): RunResult {
    this.log.push(`${asRoot ? "root" : "run"} ${command}`);
    const result = { stdout: "", stderr: "", code: 0, ...this.fileStates(command), ...this.respond(command, asRoot) };
    if (result.code !== 0 && !options.allowFailure) throw new Error(`${this.name}: '${command}' exited ${result.code}`);
    return result;
  }

  /** what fileStateCommand prints on a node with these files (all of them: the parser takes those asked for) */
  private fileStates(command: string): Partial<RunResult> | undefined {
    if (!command.includes("--- hashistack file state ---")) return undefined;
    const files = [...this.files];
    const sums = files.map(([path, f]) => `${createHash("sha256").update(f.content).digest("hex")}  ${path}`);
    const stats = files.map(([path, f]) => `${path}|${f.mode.toString(8)} ${f.owner} ${f.group}`);
    return { stdout: [...sums, "--- hashistack file state ---", ...stats, ""].join("\n") };
  }

  async compareContent(content: string | Buffer, path: string, options: UploadOptions): Promise<UploadOutcome> {
    const data = typeof content === "string" ? Buffer.from(content) : content;
    const owner = options.owner ?? "root";
    const existing = this.files.get(path);
    if (!existing?.content.equals(data)) return "uploaded";
    const sameMeta = existing.mode === options.mode && existing.owner === owner && existing.group === (options.group ?? owner);
    return sameMeta ? "unchanged" : "metadata-fixed";
  }

  async uploadContent(content: string | Buffer, path: string, options: UploadOptions): Promise<UploadOutcome> {
    const data = typeof content === "string" ? Buffer.from(content) : content;
    const owner = options.owner ?? "root";
    const outcome = await this.compareContent(data, path, options);
    this.files.set(path, { content: data, mode: options.mode, owner, group: options.group ?? owner });
    if (outcome === "unchanged") return outcome;
    if (outcome === "metadata-fixed") {
      this.log.push(`chmod ${path}`);
      return outcome;
    }
    this.log.push(`upload ${path}`);
    // a replaced binary keeps running from the deleted file until its service restarts
    for (const [unit, service] of this.services) if (service.active && path.endsWith(`/${unit}`)) service.binaryReplaced = true;
    return "uploaded";
  }

  async uploadFile(localPath: string, path: string, options: UploadOptions): Promise<UploadOutcome> {
    if (options.zstdCopy) this.log.push(`zstd copy for ${path}: ${options.zstdCopy}`);
    return this.uploadContent(await readFile(localPath), path, options);
  }

  async mkdir(dirs: DirectorySpec | DirectorySpec[]): Promise<void> {
    for (const dir of Array.isArray(dirs) ? dirs : [dirs]) {
      this.log.push(`mkdir ${dir.path}`);
      this.dirs.set(dir.path, dir);
    }
  }

  service(unit: string): ServiceHandle {
    const state = () => {
      let service = this.services.get(unit);
      if (!service) this.services.set(unit, (service = { active: false, enabled: false, binaryReplaced: false }));
      return service;
    };
    const act = (action: string, change: (s: FakeService) => void) => {
      this.log.push(`${action} ${unit}`);
      change(state());
    };
    return {
      unit,
      status: async () => ({ active: state().active, binaryReplaced: state().binaryReplaced, enabled: state().enabled }),
      isActive: async () => state().active,
      enable: async (options = {}) => {
        if (!options.now) return void (state().enabled = true);
        act("start", (s) => Object.assign(s, { active: true, enabled: true, binaryReplaced: false }));
      },
      restart: async () => act("restart", (s) => Object.assign(s, { active: true, binaryReplaced: false })),
      reload: async () => act("reload", () => {}),
    };
  }

  async reloadUnits(): Promise<void> {
    this.log.push("daemon-reload");
  }

  forwardOut(): Promise<Duplex> {
    return Promise.reject(new Error(`${this.name}: the fake remote has no tunnels (API calls need a real node)`));
  }

  /** the log since the last call */
  private seen = 0;
  takeLog(): string[] {
    const entries = this.log.slice(this.seen);
    this.seen = this.log.length;
    return entries;
  }
}

/** One fake per host name, and the `remote(host)` lookup a ClusterRun offers. */
export function fakeRemotes(names: string[]) {
  const remotes = new Map(names.map((n) => [n, new FakeRemote(n)]));
  return {
    remotes,
    remote(host: { name: string } | string): FakeRemote {
      const remote = remotes.get(typeof host === "string" ? host : host.name);
      if (!remote) throw new Error(`no fake remote for ${typeof host === "string" ? host : host.name}`);
      return remote;
    },
  };
}

/**
 * What prepare's facts command prints on a Debian 12 x86_64 node: `commands` maps a
 * probed command to its path (missing: not found), `after` is the listing that follows.
 */
export function prepareFactsAnswer(commands: Partial<Record<(typeof probedCommands)[number], string>>, after = ""): string {
  const found = probedCommands.map((name) => `${name}:${commands[name] ?? ""}`);
  return ["Linux x86_64", "debian 12", ...found, factsEnd].join("\n") + `\n${after}`;
}
