/**
 * One remote host over SSH (node-ssh): connection with retries while a host
 * boots, commands with timeouts and streamed output, idempotent atomic uploads
 * and sudo when the SSH user is not root.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { posix } from "node:path";
import type { Duplex } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { NodeSSH } from "node-ssh";
import type { InventoryHost } from "../inventory/schema.ts";
import { OperationError } from "../errors.ts";
import { HostUnreachableError, RemoteCommandError } from "./errors.ts";
import { fingerprint, type KnownHosts } from "./known-hosts.ts";
import { sh } from "./command.ts";
import { shellJoin, shellQuote } from "./quote.ts";
import {
  type DirectorySpec,
  mkdirCommand,
  type Remote,
  type RunOptions,
  type RunResult,
  type ServiceHandle,
  systemdService,
  type UploadOptions,
  type UploadOutcome,
} from "./remote.ts";

export interface SshTarget {
  name: string;
  address: string;
  port: number;
  user: string;
  keyPath?: string;
}

export function sshTarget(host: InventoryHost): SshTarget {
  return {
    name: host.name,
    address: host.ssh.host ?? host.publicIp ?? host.privateIp,
    port: host.ssh.port,
    user: host.ssh.user,
    keyPath: host.ssh.keyPath?.replace(/^~(?=\/)/, homedir()),
  };
}

export interface ConnectOptions {
  /** keep retrying refused/timed-out connections until this deadline (a host may be booting) */
  waitMs?: number;
  knownHosts?: KnownHosts;
  /** a fingerprint we know in advance (keys we generated) */
  expectedHostKey?: string;
}

export type { RunOptions, RunResult, UploadOptions, UploadOutcome } from "./remote.ts";

const localHashes = new Map<string, Promise<string>>();

/** SHA-256 of a local file, computed once per process for a given size and mtime (binaries are large). */
export async function localFileSha256(path: string): Promise<string> {
  const { size, mtimeMs } = await stat(path);
  const key = `${path}:${size}:${mtimeMs}`;
  let hash = localHashes.get(key);
  if (!hash) {
    hash = (async () => {
      const digest = createHash("sha256");
      for await (const chunk of createReadStream(path)) digest.update(chunk as Buffer);
      return digest.digest("hex");
    })();
    localHashes.set(key, hash);
  }
  return hash;
}

/**
 * The SHA-256 of a node's file, printed as its first word. OpenSSL's digest (installed
 * with ca-certificates) uses the CPU's SHA instructions and hashes a 360 MB binary about
 * six times faster than coreutils' sha256sum, which is the fallback; the upload checks
 * hash every uploaded binary, on nodes that may share the operator's cores.
 */
export function sha256Command(path: string): string {
  const file = shellQuote(path);
  return `{ openssl dgst -sha256 -r ${file} 2>/dev/null || sha256sum ${file}; }`;
}

/**
 * SFTP writes of 128 KiB, 16 in flight (2 MiB per upload), instead of ssh2's 32 KiB × 64:
 * the same bytes in a quarter of the requests, and this process's one thread is what
 * limits an upload. Five nodes receiving a 361 MB binary at once took 7.2–7.8 s instead
 * of 12–13.7 s (docs/providers.md). ssh2 splits a write the server's limits refuse.
 */
const sftpTransfer = { chunkSize: 128 * 1024, concurrency: 16 };

export class RemoteHost implements Remote {
  private ssh = new NodeSSH();
  private connected = false;

  constructor(readonly target: SshTarget) {}

  get name(): string {
    return this.target.name;
  }

  private get sudo(): string {
    return this.target.user === "root" ? "" : "sudo -n ";
  }

  async connect(options: ConnectOptions = {}): Promise<void> {
    if (this.connected && this.ssh.isConnected()) return;
    const { target } = this;
    if (!target.keyPath) {
      throw new HostUnreachableError(target.name, "no SSH key is configured.", "Set ssh.keyPath for this host in the inventory.");
    }
    let privateKey: string;
    try {
      privateKey = await readFile(target.keyPath, "utf8");
    } catch (error) {
      throw new HostUnreachableError(
        target.name,
        `cannot read SSH key ${target.keyPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`,
        "Check ssh.keyPath in the inventory.",
      );
    }
    const address = `${target.address}:${target.port}`;
    const pinned = options.expectedHostKey ?? (await options.knownHosts?.get(address));
    let presented: string | undefined;
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (let attempt = 1, delay = 250; ; attempt++, delay = Math.min(delay * 2, 3000)) {
      try {
        this.ssh = new NodeSSH();
        await this.ssh.connect({
          host: target.address,
          port: target.port,
          username: target.user,
          privateKey,
          readyTimeout: 10_000,
          keepaliveInterval: 5_000,
          hostVerifier: (key: Buffer) => {
            presented = fingerprint(key);
            return pinned === undefined || pinned === presented;
          },
        });
        break;
      } catch (error) {
        const message = (error as Error).message;
        if (pinned && presented && pinned !== presented) {
          throw new HostUnreachableError(
            target.name,
            `the SSH host key of ${address} changed (expected ${pinned}, got ${presented}).`,
            "If the host was rebuilt on purpose, remove its entry from the cluster's known_hosts.json; otherwise investigate before connecting.",
          );
        }
        if (/authentication methods failed|All configured authentication/i.test(message)) {
          throw new HostUnreachableError(
            target.name,
            `SSH login as ${target.user}@${address} with key ${target.keyPath} was refused.`,
            "Check ssh.user and ssh.keyPath in the inventory and that the public key is in the host's authorized_keys.",
          );
        }
        if (Date.now() + delay >= deadline) {
          throw new HostUnreachableError(
            target.name,
            `cannot connect to ${address} over SSH after ${attempt} attempt${attempt === 1 ? "" : "s"}: ${message}.`,
            "Check that the host is up, that sshd listens on that port and that no firewall is in the way.",
            { noAnswer: true },
          );
        }
        await sleep(delay);
      }
    }
    if (!pinned && presented && options.knownHosts) await options.knownHosts.pin(address, presented);
    // a reset connection emits 'error' on the client; unhandled, it would crash the process.
    // The command that was running reports the loss itself (HostUnreachableError).
    this.ssh.connection?.on("error", () => {});
    this.connected = true;
  }

  async run(command: string, options: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    let channelClose: (() => void) | undefined;
    const buffers = { stdout: "", stderr: "" };
    const lineSplitter = (stream: "stdout" | "stderr") => {
      let partial = "";
      return (chunk: Buffer) => {
        if (!options.onLine) return;
        partial += chunk.toString("utf8");
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) options.onLine(line, stream);
      };
    };
    const execution = this.ssh.execCommand(command, {
      stdin: options.stdin,
      onChannel: (channel) => {
        channelClose = () => channel.close();
      },
      onStdout: lineSplitter("stdout"),
      onStderr: lineSplitter("stderr"),
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        channelClose?.();
        reject(new RemoteCommandError(this.name, command, null, `timed out after ${Math.round(timeoutMs / 1000)}s`, "timeout"));
      }, timeoutMs);
    });
    let response: Awaited<typeof execution>;
    try {
      response = await Promise.race([execution, timeout]);
    } catch (error) {
      if (error instanceof RemoteCommandError) throw error;
      throw new HostUnreachableError(
        this.name,
        `lost the SSH connection while running '${command}': ${(error as Error).message}.`,
        "The host may have stopped or rebooted; check it and run the command again.",
      );
    } finally {
      clearTimeout(timer);
    }
    buffers.stdout = response.stdout;
    buffers.stderr = response.stderr;
    // sshd always reports an exit status or signal for a command that ended; neither means
    // the connection (or sshd) went away, whether or not the client has noticed yet
    if (response.code === null && response.signal === null) {
      throw new HostUnreachableError(
        this.name,
        `the SSH connection closed while running '${command}'.`,
        "The host may have stopped.",
      );
    }
    // a command killed by a signal may be the first sign of a dying host (its processes are
    // killed before sshd and the connection go): tell that apart by asking the host again
    if (response.code === null && response.signal !== null && !(await this.answers())) {
      throw new HostUnreachableError(
        this.name,
        `'${command}' was killed by ${response.signal} and the host stopped answering.`,
        "The host may have stopped or rebooted; check it and run the command again.",
        { noAnswer: true },
      );
    }
    const result = { stdout: buffers.stdout, stderr: buffers.stderr, code: response.code };
    if (response.code !== 0 && !options.allowFailure) {
      throw new RemoteCommandError(this.name, command, response.code, response.stderr, response.signal);
    }
    return result;
  }

  /** Whether the host still runs a no-op over this connection within a few seconds. */
  private answers(timeoutMs = 3000): Promise<boolean> {
    return this.run("true", { timeoutMs }).then(
      () => true,
      () => false,
    );
  }

  /** Run with root privileges (sudo -n when the SSH user is not root). */
  runAsRoot(command: string, options: RunOptions = {}): Promise<RunResult> {
    return this.run(this.sudo ? `${this.sudo}sh -c ${shellQuote(command)}` : command, options);
  }

  async mkdir(dirs: DirectorySpec | DirectorySpec[]): Promise<void> {
    const list = Array.isArray(dirs) ? dirs : [dirs];
    if (list.length) await this.runAsRoot(mkdirCommand(list));
  }

  service(unit: string): ServiceHandle {
    return systemdService(this, unit);
  }

  async reloadUnits(): Promise<void> {
    await this.runAsRoot("systemctl daemon-reload");
  }

  /** Upload content; see uploadFile. Text takes one round trip (uploadText), other bytes go through SFTP. */
  uploadContent(content: string | Buffer, path: string, options: UploadOptions): Promise<UploadOutcome> {
    if (typeof content === "string") return this.uploadText(content, path, options);
    const data = content;
    return this.upload(createHash("sha256").update(data).digest("hex"), path, options, async (temp) => {
      const sftp = await this.ssh.requestSFTP();
      try {
        await new Promise<void>((resolve, reject) =>
          sftp.writeFile(temp, data, { mode: 0o600 }, (e: Error | null | undefined) => (e ? reject(e) : resolve())),
        );
      } finally {
        sftp.end();
      }
    });
  }

  /**
   * Text content in one command, with the same contract as `upload`: the content
   * goes on stdin (never in argv); a file with this checksum is left alone or has
   * only its mode and owners fixed; otherwise the content is written to a temp file
   * beside the target (0600 until chmod), checked, and renamed over the target.
   */
  private async uploadText(content: string, path: string, options: UploadOptions): Promise<UploadOutcome> {
    const sha256 = createHash("sha256").update(content).digest("hex");
    const owner = options.owner ?? "root";
    const group = options.group ?? owner;
    const mode = options.mode.toString(8);
    const dir = posix.dirname(path);
    const temp = `${dir}/.${posix.basename(path)}.${randomBytes(6).toString("hex")}`;
    const sum = (file: string) => `$(sha256sum < "${file}" | cut -d ' ' -f 1)`;
    const script = [
      sh`p=${path} t=${temp} want=${sha256} meta=${`${mode} ${owner} ${group}`} owners=${`${owner}:${group}`} mode=${mode}`,
      `if [ -f "$p" ] && [ "${sum("$p")}" = "$want" ]; then`,
      "  cat > /dev/null",
      `  if [ "$(stat -c '%a %U %G' "$p")" = "$meta" ]; then echo unchanged; exit 0; fi`,
      `  chown "$owners" "$p" && chmod "$mode" "$p" && echo metadata-fixed; exit`,
      "fi",
      sh`mkdir -p ${dir} || exit 1`,
      `(umask 077 && cat > "$t") && chown "$owners" "$t" && chmod "$mode" "$t" && got="${sum("$t")}" || { rm -f "$t"; exit 1; }`,
      `if [ "$got" != "$want" ]; then rm -f "$t"; echo "corrupted $got"; exit 0; fi`,
      `mv -f "$t" "$p" || { rm -f "$t"; exit 1; }`,
      "echo uploaded",
    ].join("\n");
    const answer = (await this.runAsRoot(script, { stdin: content })).stdout.trim().split("\n").pop() ?? "";
    if (answer === "unchanged" || answer === "metadata-fixed" || answer === "uploaded") return answer;
    const written = answer.startsWith("corrupted ") ? answer.slice("corrupted ".length) : `unknown (${answer})`;
    throw new OperationError(`${this.name}: the upload of ${path} arrived corrupted (sha256 ${written}, expected ${sha256}).`, {
      hint: "Nothing was replaced. Check the disk space and the connection to the host, then run the command again.",
    });
  }

  /**
   * Upload a local file: skipped when the remote checksum, mode and owner
   * already match; otherwise written to a temp file beside the target and
   * renamed over it, so readers never see a half-written file.
   */
  async uploadFile(localPath: string, path: string, options: UploadOptions): Promise<UploadOutcome> {
    const packed = options.zstdCopy;
    return this.upload(await localFileSha256(localPath), path, options, async (temp) => {
      if (!packed) return this.ssh.putFile(localPath, temp, null, sftpTransfer);
      // unpacked where it landed (zstd --rm removes the packed file); the checksum check that follows is the original's
      try {
        await this.ssh.putFile(packed, `${temp}.zst`, null, sftpTransfer);
        await this.run(shellJoin(["zstd", "-d", "-q", "-f", "--rm", "-o", temp, `${temp}.zst`]));
      } catch (error) {
        await this.run(shellJoin(["rm", "-f", `${temp}.zst`]), { allowFailure: true }).catch(() => undefined);
        throw error;
      }
    });
  }

  /** What uploading this content would do, without doing it (for dry runs). */
  compareContent(content: string | Buffer, path: string, options: UploadOptions): Promise<UploadOutcome> {
    const data = typeof content === "string" ? Buffer.from(content) : content;
    return this.drift(createHash("sha256").update(data).digest("hex"), path, options);
  }

  private async drift(sha256: string, path: string, options: UploadOptions): Promise<UploadOutcome> {
    const owner = options.owner ?? "root";
    const group = options.group ?? owner;
    const probe = await this.runAsRoot(
      `[ -f ${shellQuote(path)} ] && ${sha256Command(path)} && stat -c '%a %U %G' ${shellQuote(path)} || true`,
    );
    const [sumLine, statLine] = probe.stdout.trim().split("\n");
    if (sumLine?.split(/\s+/)[0] !== sha256) return "uploaded";
    return statLine === `${options.mode.toString(8)} ${owner} ${group}` ? "unchanged" : "metadata-fixed";
  }

  private async upload(
    sha256: string,
    path: string,
    options: UploadOptions,
    send: (temp: string) => Promise<void>,
  ): Promise<UploadOutcome> {
    const owner = options.owner ?? "root";
    const group = options.group ?? owner;
    const mode = options.mode.toString(8);
    const drift = await this.drift(sha256, path, options);
    if (drift === "unchanged") return "unchanged";
    if (drift === "metadata-fixed") {
      await this.runAsRoot(`chown ${shellQuote(`${owner}:${group}`)} ${shellQuote(path)} && chmod ${mode} ${shellQuote(path)}`);
      return "metadata-fixed";
    }
    const suffix = randomBytes(6).toString("hex");
    const dir = posix.dirname(path);
    // a non-root user uploads to its home first; root writes beside the target
    const staging = this.sudo ? `/tmp/.hashistack-upload-${suffix}` : `${dir}/.${posix.basename(path)}.${suffix}`;
    const finalTemp = `${dir}/.${posix.basename(path)}.${suffix}`;
    await this.runAsRoot(`mkdir -p ${shellQuote(dir)}`);
    try {
      await send(staging);
      const steps = [
        ...(staging !== finalTemp ? [shellJoin(["mv", staging, finalTemp])] : []),
        shellJoin(["chown", `${owner}:${group}`, finalTemp]),
        shellJoin(["chmod", mode, finalTemp]),
        sha256Command(finalTemp),
      ];
      const written = (await this.runAsRoot(steps.join(" && "))).stdout.trim().split(/\s+/)[0];
      // what arrived is checked before it replaces anything
      if (written !== sha256) {
        throw new OperationError(
          `${this.name}: the upload of ${path} arrived corrupted (sha256 ${written}, expected ${sha256}).`,
          {
            hint: "Nothing was replaced. Check the disk space and the connection to the host, then run the command again.",
          },
        );
      }
      await this.runAsRoot(shellJoin(["mv", "-f", finalTemp, path]));
    } catch (error) {
      await this.runAsRoot(`rm -f ${shellQuote(staging)} ${shellQuote(finalTemp)}`, { allowFailure: true }).catch(
        () => undefined,
      );
      throw error;
    }
    return "uploaded";
  }

  /** A TCP stream to `host:port` as seen from the remote host (SSH direct-tcpip). */
  forwardOut(host: string, port: number): Promise<Duplex> {
    const connection = this.ssh.connection;
    if (!connection) return Promise.reject(new Error(`${this.name}: not connected`));
    return new Promise((resolve, reject) =>
      connection.forwardOut("127.0.0.1", 0, host, port, (error: Error | undefined, stream: Duplex) =>
        error ? reject(error) : resolve(stream),
      ),
    );
  }

  dispose(): void {
    this.ssh.dispose();
    this.connected = false;
  }
}
