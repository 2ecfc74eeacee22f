/**
 * What the stages need from a node, as an interface: RemoteHost implements it
 * over SSH, and test/helpers/fake-remote.ts in memory, so stages can be unit
 * tested without root or real nodes. Typed operations (directories, services)
 * keep command strings out of the stages.
 */
import type { Duplex } from "node:stream";
import { sh } from "./command.ts";

export interface RunOptions {
  timeoutMs?: number;
  stdin?: string;
  /** return the result instead of throwing on a non-zero exit */
  allowFailure?: boolean;
  /** streamed output, one line at a time */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface UploadOptions {
  mode: number;
  owner?: string;
  group?: string;
  /** uploadFile: a zstd copy of the local file to send instead, unpacked on the node (which has zstd) */
  zstdCopy?: string;
}

export type UploadOutcome = "uploaded" | "unchanged" | "metadata-fixed";

/** A directory as `install -d` makes it: created if missing, mode and owner set either way. */
export interface DirectorySpec {
  path: string;
  mode: number;
  /** default root */
  owner?: string | number;
  /** default: the owner */
  group?: string | number;
}

export interface ServiceStatus {
  active: boolean;
  /** the running binary was replaced on disk since it started (an upgrade waits for a restart) */
  binaryReplaced: boolean;
  /** enabled at boot (`systemctl is-enabled` says so); unknown: enable to be sure */
  enabled?: boolean;
}

/** One systemd unit on a node. */
export interface ServiceHandle {
  readonly unit: string;
  status(): Promise<ServiceStatus>;
  isActive(): Promise<boolean>;
  /** enable at boot; `now` starts it too */
  enable(options?: { now?: boolean }): Promise<void>;
  restart(): Promise<void>;
  reload(): Promise<void>;
}

export interface Remote {
  readonly name: string;
  run(command: string, options?: RunOptions): Promise<RunResult>;
  /** with root privileges (sudo -n when the SSH user is not root) */
  runAsRoot(command: string, options?: RunOptions): Promise<RunResult>;
  uploadContent(content: string | Buffer, path: string, options: UploadOptions): Promise<UploadOutcome>;
  uploadFile(localPath: string, path: string, options: UploadOptions): Promise<UploadOutcome>;
  /** what `uploadContent` would do, changing nothing (for dry runs) */
  compareContent(content: string | Buffer, path: string, options: UploadOptions): Promise<UploadOutcome>;
  /** make the directories (one round trip) */
  mkdir(dirs: DirectorySpec | DirectorySpec[]): Promise<void>;
  service(unit: string): ServiceHandle;
  /** systemctl daemon-reload, after unit files changed */
  reloadUnits(): Promise<void>;
  /** a TCP stream to host:port as seen from the node (for tunnels) */
  forwardOut(host: string, port: number): Promise<Duplex>;
}

/** The `install -d` command for directories, every value quoted. */
export function mkdirCommand(dirs: DirectorySpec[]): string {
  return dirs
    .map((d) => {
      const owner = String(d.owner ?? "root");
      return sh`install -d -m ${d.mode.toString(8).padStart(4, "0")} -o ${owner} -g ${String(d.group ?? owner)} ${d.path}`;
    })
    .join(" && ");
}

/** A service handle that runs systemctl through `runAsRoot` (RemoteHost's implementation). */
export function systemdService(remote: Pick<Remote, "runAsRoot">, unit: string): ServiceHandle {
  const status = async (): Promise<ServiceStatus> => {
    // uploads replace files atomically, so an upgraded binary shows as "(deleted)"
    const probe = await remote.runAsRoot(
      `${sh`systemctl is-active ${unit}`}; echo "enabled=$(${sh`systemctl is-enabled ${unit}`} 2>/dev/null)"; readlink /proc/$(${sh`systemctl show -p MainPID --value ${unit}`})/exe || true`,
      { allowFailure: true },
    );
    const [state, enabled = "", exe = ""] = probe.stdout.trim().split("\n");
    return { active: state === "active", binaryReplaced: exe.endsWith(" (deleted)"), enabled: enabled === "enabled=enabled" };
  };
  return {
    unit,
    status,
    isActive: async () => (await status()).active,
    async enable(options = {}) {
      // starting may wait for the unit's own start-up (Vault, Consul): a long timeout
      if (options.now) await remote.runAsRoot(sh`systemctl enable --now ${unit}`, { timeoutMs: 120_000 });
      else await remote.runAsRoot(sh`systemctl enable ${unit}`, { allowFailure: true });
    },
    async restart() {
      await remote.runAsRoot(sh`systemctl restart ${unit}`, { timeoutMs: 120_000 });
    },
    async reload() {
      await remote.runAsRoot(sh`systemctl reload ${unit}`, { timeoutMs: 120_000 });
    },
  };
}
