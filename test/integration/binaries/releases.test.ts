/**
 * install.method: download against a locally served release tree with the same layout
 * as releases.hashicorp.com (which cannot be reached from the development machines):
 * a zip, SHA256SUMS and its detached signature made with a throwaway gpg key, and that
 * key served as the "pgp-key.txt". The real gpg, gpgv and unzip do the checking.
 */
import { withDetails } from "../../helpers/local-cluster.ts";
import { prepareFactsAnswer } from "../../helpers/fake-remote.ts";
import { installedVersionCommand, pinnedDockerVersions } from "../../../scripts/lib/docker/engine.ts";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { $ } from "zx";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { binaryPath } from "../../../scripts/lib/binaries/build.ts";
import { tools } from "../../../scripts/lib/binaries/catalog.ts";
import { ensureReleaseBinary, readReleaseRecord, type ReleaseSource } from "../../../scripts/lib/binaries/releases.ts";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import type { ClusterConfig } from "../../../scripts/lib/config/schema.ts";
import { OperationError } from "../../../scripts/lib/errors.ts";
import type { RemoteHost } from "../../../scripts/lib/remote/ssh.ts";
import { prepareStage } from "../../../scripts/lib/stages/prepare.ts";
import type { ClusterRun } from "../../../scripts/lib/stages/run-context.ts";
import { loopbackInventory, makeConfig, tempDir } from "../../helpers/fixtures.ts";
import { makeRelease, ReleaseServer, type ReleaseArtifacts, Signer, type ThrowawayKey } from "../../helpers/release-tree.ts";

const tool = "consul-template";
const version = "0.41.1";
const executable = `#!/bin/sh\necho "${tool} v${version} (throwaway release)"\n`;

let signer: Signer;
let releaseKey: ThrowawayKey;
let otherKey: ThrowawayKey;
let release: ReleaseArtifacts;
let goodSignature: Buffer;
const server = new ReleaseServer();
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  signer = await Signer.create();
  releaseKey = await signer.generateKey("Throwaway Release");
  otherKey = await signer.generateKey("Someone Else");
  release = await makeRelease(tool, version, executable);
  goodSignature = await signer.sign(releaseKey.fingerprint, release.sums);
  await server.start();
});

afterAll(async () => {
  await server.stop();
  for (const cleanup of cleanups) await cleanup();
  await signer.remove();
});

beforeEach(() => server.reset());

/** a fresh cache; the server serves the throwaway key and a correctly signed release unless a test changes it */
async function setup(): Promise<{ root: string; source: ReleaseSource }> {
  const cache = await tempDir("releases-cache");
  cleanups.push(cache.remove);
  server.routes.set("/.well-known/pgp-key.txt", releaseKey.publicKey);
  server.serveRelease(tool, version, {
    [release.zipName]: release.zip,
    [release.sumsName]: release.sums,
    [`${release.sumsName}.sig`]: goodSignature,
  });
  return {
    root: cache.path,
    source: {
      releasesUrl: server.url,
      signingKeyUrl: `${server.url}/.well-known/pgp-key.txt`,
      fingerprint: releaseKey.fingerprint,
    },
  };
}

/** every file under the cache's releases/ folder, relative to it */
async function cachedFiles(root: string): Promise<string[]> {
  const dir = join(root, "releases");
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

async function failure(promise: Promise<unknown>): Promise<OperationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OperationError);
  return error as OperationError;
}

const keyringOnly = (fingerprint: string) => [`keys/${fingerprint}.gpg`];

describe("HashiCorp release download", () => {
  it("verifies the signature and checksum, caches the binary and it runs; a second call downloads nothing", async () => {
    const { root, source } = await setup();
    const first = await ensureReleaseBinary(tool, version, source, { cacheRoot: root });
    expect(first).toEqual({ path: join(root, "releases", tool, version, tool), downloaded: true });
    expect((await $({ quiet: true })`${first.path}`).stdout.trim()).toBe(`${tool} v${version} (throwaway release)`);
    // the key first, then the signed sums, the zip last
    expect(server.requests).toEqual([
      "/.well-known/pgp-key.txt",
      `/${tool}/${version}/${release.sumsName}`,
      `/${tool}/${version}/${release.sumsName}.sig`,
      `/${tool}/${version}/${release.zipName}`,
    ]);
    const record = await readReleaseRecord(tool, version, root);
    expect(record).toMatchObject({
      tool,
      version,
      signedBy: releaseKey.fingerprint,
      zip: `${server.url}/${tool}/${version}/${release.zipName}`,
    });
    expect(await cachedFiles(root)).toEqual(
      [...keyringOnly(releaseKey.fingerprint), `${tool}/${version}/${tool}`, `${tool}/${version}/release.json`].sort(),
    );

    server.requests.length = 0;
    const second = await ensureReleaseBinary(tool, version, source, { cacheRoot: root });
    expect(second).toEqual({ path: first.path, downloaded: false });
    expect(server.requests).toEqual([]);
  });

  it("parallel calls download once", async () => {
    const { root, source } = await setup();
    const results = await Promise.all([1, 2, 3].map(() => ensureReleaseBinary(tool, version, source, { cacheRoot: root })));
    expect(results.filter((r) => r.downloaded)).toHaveLength(1);
    expect(server.requests.filter((r) => r.endsWith(".zip"))).toHaveLength(1);
  });

  it("refuses a zip that does not match SHA256SUMS, naming the file, and caches nothing of it", async () => {
    const { root, source } = await setup();
    const tampered = Buffer.from(release.zip);
    tampered[tampered.length - 30] = (tampered[tampered.length - 30] ?? 0) ^ 0xff;
    server.serveRelease(tool, version, { [release.zipName]: tampered });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root }));
    expect(error.message).toContain(
      `${release.zipName} from ${server.url}/${tool}/${version}/${release.zipName} does not match its signed checksum`,
    );
    expect(error.hint).toContain("nothing was cached");
    expect(await cachedFiles(root)).toEqual(keyringOnly(releaseKey.fingerprint));
    expect(await readdir(join(root, "releases", tool))).toEqual([]); // no staging left behind
  });

  it("refuses SHA256SUMS altered after signing (bad signature) before fetching the zip", async () => {
    const { root, source } = await setup();
    const altered = Buffer.from(release.sums.toString().replace(/^[0-9a-f]/m, (c) => (c === "0" ? "1" : "0")));
    server.serveRelease(tool, version, { [release.sumsName]: altered });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root }));
    expect(error.message).toContain(`The signature of ${server.url}/${tool}/${version}/${release.sumsName} is not valid`);
    expect(error.message).toContain("BADSIG");
    expect(server.requests.some((r) => r.endsWith(".zip"))).toBe(false);
    expect(await cachedFiles(root)).toEqual(keyringOnly(releaseKey.fingerprint));
  });

  it("refuses SHA256SUMS signed by another key", async () => {
    const { root, source } = await setup();
    server.serveRelease(tool, version, { [`${release.sumsName}.sig`]: await signer.sign(otherKey.fingerprint, release.sums) });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root }));
    expect(error.message).toContain(`is not valid: it was not made by key ${releaseKey.fingerprint}`);
    expect(server.requests.some((r) => r.endsWith(".zip"))).toBe(false);
    expect(await cachedFiles(root)).toEqual(keyringOnly(releaseKey.fingerprint));
  });

  it("refuses a served key whose fingerprint is not the pinned one before fetching anything of the release", async () => {
    const { root, source } = await setup();
    server.routes.set("/.well-known/pgp-key.txt", otherKey.publicKey);
    // the release is signed by the served key: only the pin stops it
    server.serveRelease(tool, version, { [`${release.sumsName}.sig`]: await signer.sign(otherKey.fingerprint, release.sums) });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root }));
    expect(error.message).toBe(
      `The signing key from ${server.url}/.well-known/pgp-key.txt is not the pinned one: it has ${otherKey.fingerprint}, the pinned fingerprint is ${releaseKey.fingerprint}.`,
    );
    expect(server.requests).toEqual(["/.well-known/pgp-key.txt"]);
    expect(await cachedFiles(root)).toEqual([]);
  });

  it("uses only the pinned key from a key file that carries several", async () => {
    const { root, source } = await setup();
    server.routes.set("/.well-known/pgp-key.txt", `${otherKey.publicKey}\n${releaseKey.publicKey}`);
    server.serveRelease(tool, version, { [`${release.sumsName}.sig`]: await signer.sign(otherKey.fingerprint, release.sums) });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root }));
    expect(error.message).toContain(`it was not made by key ${releaseKey.fingerprint}`);
  });

  it("fetches the key again when a release is signed by a subkey newer than the cached key", async () => {
    const { root, source } = await setup();
    const rotating = await signer.generateKey("Rotating Release");
    const pinned = { ...source, fingerprint: rotating.fingerprint };
    server.routes.set("/.well-known/pgp-key.txt", rotating.publicKey);
    server.serveRelease(tool, version, { [`${release.sumsName}.sig`]: await signer.sign(rotating.fingerprint, release.sums) });
    expect((await ensureReleaseBinary(tool, version, pinned, { cacheRoot: root })).downloaded).toBe(true);

    // the publisher adds a signing subkey and signs the next release with it
    const { subkey, publicKey } = await signer.addSigningSubkey(rotating.fingerprint);
    server.routes.set("/.well-known/pgp-key.txt", publicKey);
    const next = await makeRelease(tool, "0.41.2", executable);
    server.serveRelease(tool, "0.41.2", {
      [next.zipName]: next.zip,
      [next.sumsName]: next.sums,
      [`${next.sumsName}.sig`]: await signer.sign(subkey, next.sums),
    });
    server.requests.length = 0;
    expect((await ensureReleaseBinary(tool, "0.41.2", pinned, { cacheRoot: root })).downloaded).toBe(true);
    expect(server.requests.filter((r) => r.endsWith("pgp-key.txt"))).toHaveLength(1);
    expect((await readReleaseRecord(tool, "0.41.2", root))?.signedBy).toBe(rotating.fingerprint);
  });

  it("names the zip when SHA256SUMS has no line for it", async () => {
    const { root, source } = await setup();
    const sums = Buffer.from(
      release.sums
        .toString()
        .split("\n")
        .filter((l) => !l.includes(release.zipName))
        .join("\n"),
    );
    server.serveRelease(tool, version, {
      [release.sumsName]: sums,
      [`${release.sumsName}.sig`]: await signer.sign(releaseKey.fingerprint, sums),
    });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root }));
    expect(error.message).toBe(`${server.url}/${tool}/${version}/${release.sumsName} has no line for ${release.zipName}.`);
    expect(await cachedFiles(root)).toEqual(keyringOnly(releaseKey.fingerprint));
  });

  it("names the URL of a 404 and does not retry it", async () => {
    const { root, source } = await setup();
    const error = await failure(ensureReleaseBinary(tool, "9.9.9", source, { cacheRoot: root }));
    const url = `${server.url}/${tool}/9.9.9/${tool}_9.9.9_SHA256SUMS`;
    expect(error.message).toBe(`Downloading ${url} failed: HTTP 404 Not Found.`);
    expect(error.hint).toContain("versions.*");
    expect(server.requests.filter((r) => r.includes("9.9.9"))).toHaveLength(1);
    expect(existsSync(join(root, "releases", tool, "9.9.9"))).toBe(false);
  });

  it("retries a 5xx answer and then succeeds", async () => {
    const { root, source } = await setup();
    server.serveRelease(tool, version, { [release.zipName]: { failFirst: 1, then: release.zip } });
    const result = await ensureReleaseBinary(tool, version, source, { cacheRoot: root });
    expect(result.downloaded).toBe(true);
    expect(server.requests.filter((r) => r.endsWith(".zip"))).toHaveLength(2);
  });

  it("gives up on a server that sends nothing, naming the URL, and caches nothing", async () => {
    const { root, source } = await setup();
    server.serveRelease(tool, version, { [release.zipName]: "hang" });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root, idleTimeoutMs: 300, attempts: 2 }));
    expect(error.message).toBe(
      `Downloading ${server.url}/${tool}/${version}/${release.zipName} failed: no data for 300 ms (timed out).`,
    );
    expect(server.requests.filter((r) => r.endsWith(".zip"))).toHaveLength(2);
    expect(await cachedFiles(root)).toEqual(keyringOnly(releaseKey.fingerprint));
  });

  it("refuses a zip without the tool's binary", async () => {
    const { root, source } = await setup();
    const wrong = await makeRelease("not-it", version, executable);
    const sums = Buffer.from(wrong.sums.toString().replaceAll(wrong.zipName, release.zipName));
    server.serveRelease(tool, version, {
      [release.zipName]: wrong.zip,
      [release.sumsName]: sums,
      [`${release.sumsName}.sig`]: await signer.sign(releaseKey.fingerprint, sums),
    });
    const error = await failure(ensureReleaseBinary(tool, version, source, { cacheRoot: root }));
    expect(error.message).toContain(`${release.zipName} holds no '${tool}' binary`);
    expect(await cachedFiles(root)).toEqual(keyringOnly(releaseKey.fingerprint));
  });
});

/** a file standing in for a cached Go build, so prepare builds nothing */
async function placeBuild(path: string): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, "#!/bin/sh\n");
  await chmod(path, 0o755);
}

/** prepare against two recording "nodes" (a server with Vault and a client): what is uploaded from where */
async function runPrepare(
  config: ClusterConfig,
  env: Record<string, string>,
): Promise<{ summary: string; uploads: Record<string, [string, string, number][]>; said: string[] }> {
  const uploads: Record<string, [string, string, number][]> = { "server-1": [], "client-1": [] };
  const remote = (host: string) =>
    ({
      // Docker Engine (docker profile) answers as installed and running: its install has its own tests
      run: async (command: string) => ({
        stdout: command.startsWith("uname")
          ? prepareFactsAnswer({ systemctl: "/usr/bin/systemctl" })
          : command === installedVersionCommand
            ? `${pinnedDockerVersions["debian 12"]}\n`
            : command.startsWith("systemctl is-active")
              ? "active\n"
              : command.startsWith("systemctl is-enabled")
                ? "enabled\n"
                : "versions\n",
        stderr: "",
        code: 0,
      }),
      runAsRoot: async () => ({ stdout: "", stderr: "", code: 0 }),
      mkdir: async () => {},
      uploadContent: async () => "unchanged",
      uploadFile: async (from: string, to: string, options: { mode: number }) => {
        uploads[host]?.push([from, to, options.mode]);
        return "uploaded";
      },
    }) as unknown as RemoteHost;
  const reporter = createRecordingReporter();
  const run = {
    config,
    inventory: loopbackInventory([
      { name: "server-1", roles: ["server", "vault"], ip: "127.0.0.1" },
      { name: "client-1", roles: ["client"], ip: "127.0.0.2" },
    ]),
    reporter,
    remote: (host: { name: string } | string) => remote(typeof host === "string" ? host : host.name),
  } as unknown as ClusterRun;
  const saved = { ...process.env };
  try {
    Object.assign(process.env, env);
    const summary = await withDetails(prepareStage.run(run));
    return {
      summary,
      uploads,
      said: reporter.messages.filter((m) => m.kind === "info" && m.text.startsWith("binaries:")).map((m) => m.text),
    };
  } finally {
    process.env = saved;
  }
}

describe("prepare's binaries", () => {
  it("install.method: download uploads the verified releases (and the exec profile's Fabio, Prometheus and Alertmanager from the Go build cache)", async () => {
    const cache = await tempDir("prepare-cache");
    cleanups.push(cache.remove);
    const config = makeConfig({
      install: { method: "download", signingKeyFingerprint: releaseKey.fingerprint },
      jobs: { runtime: "exec" },
    });
    server.routes.set("/key.asc", releaseKey.publicKey);
    const versions = { ...config.versions, "consul-template": config.versions.consulTemplate };
    for (const name of ["consul", "nomad", "vault", "consul-template"] as const) {
      const artifacts = await makeRelease(name, versions[name], `#!/bin/sh\necho ${name}\n`);
      server.serveRelease(name, versions[name], {
        [artifacts.zipName]: artifacts.zip,
        [artifacts.sumsName]: artifacts.sums,
        [`${artifacts.sumsName}.sig`]: await signer.sign(releaseKey.fingerprint, artifacts.sums),
      });
    }
    // Fabio, Prometheus and Alertmanager are not HashiCorp releases: the cached Go builds are used
    const [fabio, prometheus, alertmanager] = [tools.fabio, tools.prometheus, tools.alertmanager].map((t) =>
      binaryPath(t, cache.path),
    ) as [string, string, string];
    for (const path of [fabio, prometheus, alertmanager]) await placeBuild(path);
    const { summary, uploads } = await runPrepare(config, {
      HASHISTACK_CACHE: cache.path,
      HASHISTACK_RELEASES_URL: server.url,
      HASHISTACK_SIGNING_KEY_URL: `${server.url}/key.asc`,
    });
    expect(summary).toBe("10 binaries uploaded");
    const release = (name: string, version: string) => join(cache.path, "releases", name, version, name);
    expect(uploads["server-1"]).toEqual([
      [release("consul", versions.consul), "/usr/local/bin/consul", 0o755],
      [release("nomad", versions.nomad), "/usr/local/bin/nomad", 0o755],
      [release("consul-template", versions.consulTemplate), "/usr/local/bin/consul-template", 0o755],
      [release("vault", versions.vault), "/usr/local/bin/vault", 0o755],
    ]);
    expect(uploads["client-1"]).toEqual([
      [release("consul", versions.consul), "/usr/local/bin/consul", 0o755],
      [release("nomad", versions.nomad), "/usr/local/bin/nomad", 0o755],
      [release("consul-template", versions.consulTemplate), "/usr/local/bin/consul-template", 0o755],
      [fabio, "/usr/local/bin/fabio", 0o755],
      [prometheus, "/usr/local/bin/prometheus", 0o755],
      [alertmanager, "/usr/local/bin/alertmanager", 0o755],
    ]);
    expect(server.requests.filter((r) => r.endsWith(".zip"))).toHaveLength(4);
  });

  it("install.method: upload still uploads the Go builds and fetches nothing", async () => {
    const cache = await tempDir("prepare-cache");
    cleanups.push(cache.remove);
    const config = makeConfig({ install: { method: "upload" }, jobs: { runtime: "docker" } });
    const specs = {
      consul: { ...tools.consul, version: config.versions.consul },
      nomad: { ...tools.nomad, version: config.versions.nomad },
      vault: { ...tools.vault, version: config.versions.vault },
      "consul-template": { ...tools["consul-template"], version: config.versions.consulTemplate },
    };
    for (const spec of Object.values(specs)) await placeBuild(binaryPath(spec, cache.path));
    const { summary, uploads } = await runPrepare(config, { HASHISTACK_CACHE: cache.path, HASHISTACK_RELEASES_URL: server.url });
    expect(summary).toMatch(/^7 binaries uploaded(; Docker Engine up to date)?$/);
    const built = (name: keyof typeof specs) => binaryPath(specs[name], cache.path);
    expect(uploads["server-1"]?.map((u) => u[0])).toEqual([
      built("consul"),
      built("nomad"),
      built("consul-template"),
      built("vault"),
    ]);
    expect(uploads["client-1"]?.map((u) => u[0])).toEqual([built("consul"), built("nomad"), built("consul-template")]);
    expect(server.requests).toEqual([]);
  });
});

/** every HashiCorp release the config names, served signed by `signWith` (the pinned key unless a test says otherwise) */
async function serveReleases(config: ClusterConfig, signWith: (tool: string) => string = () => releaseKey.fingerprint) {
  server.routes.set("/key.asc", releaseKey.publicKey);
  for (const [name, version] of Object.entries(hashicorpVersions(config))) {
    const artifacts = await makeRelease(name, version, `#!/bin/sh\necho ${name}\n`);
    server.serveRelease(name, version, {
      [artifacts.zipName]: artifacts.zip,
      [artifacts.sumsName]: artifacts.sums,
      [`${artifacts.sumsName}.sig`]: await signer.sign(signWith(name), artifacts.sums),
    });
  }
}

function hashicorpVersions(config: ClusterConfig): Record<"consul" | "nomad" | "vault" | "consul-template", string> {
  const { consul, nomad, vault, consulTemplate } = config.versions;
  return { consul, nomad, vault, "consul-template": consulTemplate };
}

/** stand-ins for the cached Go builds of the config's versions; their paths by tool */
async function placeBuilds(config: ClusterConfig, root: string): Promise<Record<string, string>> {
  const paths: Record<string, string> = {};
  for (const [name, version] of Object.entries(hashicorpVersions(config))) {
    paths[name] = binaryPath({ ...tools[name as keyof typeof tools], version }, root);
    await placeBuild(paths[name]);
  }
  return paths;
}

/** a loopback port nothing listens on: the connection is refused */
async function refusedUrl(): Promise<string> {
  const { createServer } = await import("node:net");
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as import("node:net").AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe("install.method: auto (the default)", () => {
  const auto = () => makeConfig({ install: { signingKeyFingerprint: releaseKey.fingerprint }, jobs: { runtime: "docker" } });
  const newCache = async () => {
    const cache = await tempDir("auto-cache");
    cleanups.push(cache.remove);
    return cache.path;
  };
  const env = (cache: string, releasesUrl = server.url) => ({
    HASHISTACK_CACHE: cache,
    HASHISTACK_RELEASES_URL: releasesUrl,
    HASHISTACK_SIGNING_KEY_URL: `${server.url}/key.asc`,
  });
  const release = (cache: string, name: string, version: string) => join(cache, "releases", name, version, name);

  it("the release server answers: verified releases are uploaded and the run says so in one line", async () => {
    const config = auto();
    expect(config.install.method).toBe("auto");
    const cache = await newCache();
    await serveReleases(config);
    const { uploads, said } = await runPrepare(config, env(cache));
    const v = hashicorpVersions(config);
    expect(uploads["server-1"]?.map((u) => u[0])).toEqual([
      release(cache, "consul", v.consul),
      release(cache, "nomad", v.nomad),
      release(cache, "consul-template", v["consul-template"]),
      release(cache, "vault", v.vault),
    ]);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(
      new RegExp(
        `^binaries: HashiCorp releases, signature and checksum verified — ${server.url} answered in \\d+ ms \\(install.method: auto\\)$`,
      ),
    );
    expect(server.requests.filter((r) => r.endsWith(".zip"))).toHaveLength(4);
  });

  it("the release server refuses: the local builds are uploaded, naming why", async () => {
    const config = auto();
    const cache = await newCache();
    const builds = await placeBuilds(config, cache);
    const down = await refusedUrl();
    const { uploads, said } = await runPrepare(config, env(cache, down));
    expect(uploads["client-1"]?.map((u) => u[0])).toEqual([builds.consul, builds.nomad, builds["consul-template"]]);
    expect(said).toEqual([
      `binaries: local builds for consul, nomad, vault, consul-template (already in the build cache) — the release server did not answer: ${down}/consul/${config.versions.consul}/consul_${config.versions.consul}_SHA256SUMS: connection refused (ECONNREFUSED) (install.method: auto; set upload or download to choose)`,
    ]);
  });

  it("the release server sends nothing: the probe gives up after 3 s and the local builds are used", async () => {
    const config = auto();
    const cache = await newCache();
    const builds = await placeBuilds(config, cache);
    await serveReleases(config);
    server.serveRelease("consul", config.versions.consul, { [`consul_${config.versions.consul}_SHA256SUMS`]: "hang" });
    const started = Date.now();
    const { uploads, said } = await runPrepare(config, env(cache));
    const seconds = (Date.now() - started) / 1000;
    expect(uploads["server-1"]?.[0]?.[0]).toBe(builds.consul);
    expect(said[0]).toContain("sent no answer within 3.0 s");
    expect(seconds).toBeLessThan(10); // the probe's 3 s plus the stage, not a download's 60 s idle timeout
    expect(server.requests.some((r) => r.endsWith(".zip"))).toBe(false);
  });

  it("a bad signature is an error, not a reason to use the local builds that are there", async () => {
    const config = auto();
    const cache = await newCache();
    await placeBuilds(config, cache);
    await serveReleases(config, (tool) => (tool === "nomad" ? otherKey.fingerprint : releaseKey.fingerprint));
    const error = await failure(runPrepare(config, env(cache)));
    expect(error.message).toContain(
      `The signature of ${server.url}/nomad/${config.versions.nomad}/nomad_${config.versions.nomad}_SHA256SUMS is not valid`,
    );
    expect(error.hint).toContain("Do not use this release");
    expect(existsSync(release(cache, "nomad", config.versions.nomad))).toBe(false);
  });

  it("releases verified earlier are used as they are when the server is gone, without a request", async () => {
    const config = auto();
    const cache = await newCache();
    await serveReleases(config);
    await runPrepare(config, env(cache));
    server.reset();
    const { uploads, said } = await runPrepare(config, env(cache, await refusedUrl()));
    expect(uploads["server-1"]?.[1]?.[0]).toBe(release(cache, "nomad", config.versions.nomad));
    expect(said).toEqual(["binaries: HashiCorp releases, verified earlier and cached (install.method: auto)"]);
    expect(server.requests).toEqual([]);
  });
});
