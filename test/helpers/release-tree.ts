/**
 * A stand-in for releases.hashicorp.com: throwaway OpenPGP keys made with the real
 * gpg in a temporary GNUPGHOME, release zips made with `zip`, SHA256SUMS signed with
 * a detached binary signature (as HashiCorp's `.sig` files are), all served by an
 * in-process HTTP server that counts requests.
 */
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";

export interface ThrowawayKey {
  fingerprint: string;
  /** armored public key */
  publicKey: string;
}

/** A GNUPGHOME holding throwaway signing keys without passphrases. */
export class Signer {
  private constructor(readonly home: string) {}

  static async create(): Promise<Signer> {
    return new Signer(await mkdtemp(join(tmpdir(), "hashistack-signer-")));
  }

  async generateKey(name: string): Promise<ThrowawayKey> {
    const uid = `${name} <${name.toLowerCase().replace(/\W+/g, "-")}@example.invalid>`;
    await $({
      quiet: true,
    })`gpg --homedir ${this.home} --batch --pinentry-mode loopback --passphrase ${""} --quick-gen-key ${uid} ed25519 sign never`;
    const listed = (await $({ quiet: true })`gpg --homedir ${this.home} --batch --with-colons --list-keys ${uid}`).stdout;
    const fingerprint = listed
      .split("\n")
      .find((l) => l.startsWith("fpr:"))
      ?.split(":")[9];
    if (!fingerprint) throw new Error(`no fingerprint for the generated key ${uid}`);
    const publicKey = (await $({ quiet: true })`gpg --homedir ${this.home} --batch --armor --export ${fingerprint}`).stdout;
    return { fingerprint, publicKey };
  }

  /** add a signing subkey to a key; its fingerprint and the key's updated armored public key */
  async addSigningSubkey(primary: string): Promise<{ subkey: string; publicKey: string }> {
    await $({
      quiet: true,
    })`gpg --homedir ${this.home} --batch --pinentry-mode loopback --passphrase ${""} --quick-add-key ${primary} ed25519 sign never`;
    const listed = (await $({ quiet: true })`gpg --homedir ${this.home} --batch --with-colons --list-keys ${primary}`).stdout;
    const subkey = listed
      .split("\n")
      .filter((l) => l.startsWith("fpr:"))
      .map((l) => l.split(":")[9])
      .at(-1);
    if (!subkey || subkey === primary) throw new Error(`no subkey was added to ${primary}`);
    const publicKey = (await $({ quiet: true })`gpg --homedir ${this.home} --batch --armor --export ${primary}`).stdout;
    return { subkey, publicKey };
  }

  /** a detached binary signature of `data` by exactly this (sub)key */
  async sign(fingerprint: string, data: Buffer): Promise<Buffer> {
    const dir = await mkdtemp(join(tmpdir(), "hashistack-sign-"));
    try {
      await writeFile(join(dir, "data"), data);
      await $({
        quiet: true,
      })`gpg --homedir ${this.home} --batch --yes --pinentry-mode loopback --passphrase ${""} --local-user ${`${fingerprint}!`} --detach-sign --output ${join(dir, "data.sig")} ${join(dir, "data")}`;
      return await readFile(join(dir, "data.sig"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async remove(): Promise<void> {
    await $({ quiet: true, nothrow: true })`gpgconf --homedir ${this.home} --kill all`;
    await rm(this.home, { recursive: true, force: true });
  }
}

export interface ReleaseArtifacts {
  zipName: string;
  zip: Buffer;
  sumsName: string;
  sums: Buffer;
}

/** `<tool>_<version>_linux_amd64.zip` holding an executable `<tool>` (plus a LICENSE.txt, as HashiCorp's do) and its SHA256SUMS */
export async function makeRelease(tool: string, version: string, executable: string): Promise<ReleaseArtifacts> {
  const dir = await mkdtemp(join(tmpdir(), "hashistack-release-"));
  try {
    const zipName = `${tool}_${version}_linux_amd64.zip`;
    await mkdir(join(dir, "content"));
    await writeFile(join(dir, "content", tool), executable);
    await chmod(join(dir, "content", tool), 0o755);
    await writeFile(join(dir, "content", "LICENSE.txt"), "throwaway licence\n");
    await $({ quiet: true, cwd: join(dir, "content") })`zip -q -X ${join(dir, zipName)} ${tool} LICENSE.txt`;
    const zip = await readFile(join(dir, zipName));
    const other = `${tool}_${version}_darwin_arm64.zip`;
    const sums = Buffer.from(`${sha256(Buffer.from("another platform"))}  ${other}\n${sha256(zip)}  ${zipName}\n`);
    return { zipName, zip, sumsName: `${tool}_${version}_SHA256SUMS`, sums };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export type Route = Buffer | string | { status: number } | "hang" | { failFirst: number; then: Buffer };

/** An HTTP server on 127.0.0.1 (port 0) answering from a path → content table, recording every request. */
export class ReleaseServer {
  readonly routes = new Map<string, Route>();
  readonly requests: string[] = [];
  private readonly failures = new Map<string, number>();
  private server?: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url ?? "/";
      this.requests.push(path);
      const route = this.routes.get(path);
      if (route === "hang") return; // send nothing; the client's idle timeout must fire
      if (route === undefined) {
        res.writeHead(404).end("not found");
      } else if (typeof route === "object" && "status" in route) {
        res.writeHead(route.status).end();
      } else if (typeof route === "object" && "failFirst" in route) {
        const failed = this.failures.get(path) ?? 0;
        if (failed < route.failFirst) {
          this.failures.set(path, failed + 1);
          res.writeHead(503).end("try later");
        } else res.writeHead(200).end(route.then);
      } else {
        res.writeHead(200, { "content-type": "application/octet-stream" }).end(route);
      }
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** a release's files under `/<tool>/<version>/` */
  serveRelease(tool: string, version: string, files: Record<string, Route>): void {
    for (const [name, content] of Object.entries(files)) this.routes.set(`/${tool}/${version}/${name}`, content);
  }

  reset(): void {
    this.routes.clear();
    this.requests.length = 0;
    this.failures.clear();
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
