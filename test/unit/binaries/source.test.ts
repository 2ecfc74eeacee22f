import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  planBinarySources,
  probeTargets,
  probeUrls,
  type ProbeOutcome,
  type Wanted,
} from "../../../scripts/lib/binaries/source.ts";
import { signingKeyringPath } from "../../../scripts/lib/binaries/releases.ts";
import { makeConfig, tempDir } from "../../helpers/fixtures.ts";

const wanted: Wanted[] = [
  { name: "consul", version: "1.22.5" },
  { name: "nomad", version: "1.11.3" },
  { name: "vault", version: "1.21.0" },
];
const releasesUrl = "https://releases.example";

/** a plan with these releases cached and this probe answer; which tools the probe was asked about */
async function plan(method: "auto" | "upload" | "download", cached: string[], answer: ProbeOutcome) {
  const probed: string[][] = [];
  const result = await planBinarySources(method, wanted, {
    releasesUrl,
    isReleaseCached: (t) => cached.includes(t.name),
    isBuildCached: (t) => t.name !== "vault",
    probe: async (missing) => {
      probed.push(missing.map((t) => t.name));
      return answer;
    },
  });
  return { ...result, probed };
}

const answers: ProbeOutcome = { answers: true, ms: 120 };
const silent: ProbeOutcome = { answers: false, ms: 3000, reason: "https://releases.example/x sent no answer within 3.0 s" };

describe("install.method", () => {
  it("defaults to auto", () => {
    expect(makeConfig().install.method).toBe("auto");
  });

  it("auto: the server answers => every missing binary is a verified release (nothing is left to build on a failed check)", async () => {
    const result = await plan("auto", [], answers);
    expect(result.sources).toEqual({ consul: "release", nomad: "release", vault: "release" });
    expect(result.probed).toEqual([["consul", "nomad", "vault"]]);
    expect(result.line).toBe(
      "binaries: HashiCorp releases, signature and checksum verified — https://releases.example answered in 120 ms (install.method: auto)",
    );
  });

  it("auto: the server refuses or times out => local builds, saying why and what is compiled now", async () => {
    const result = await plan("auto", [], silent);
    expect(result.sources).toEqual({ consul: "build", nomad: "build", vault: "build" });
    expect(result.line).toBe(
      "binaries: local builds for consul, nomad, vault (building vault now, ~25–35 min cold on 2 cores) — the release server did not answer: https://releases.example/x sent no answer within 3.0 s (install.method: auto; set upload or download to choose)",
    );
    expect(result.line).not.toContain("\n");
  });

  it("auto: releases verified earlier are used without asking the server", async () => {
    const result = await plan("auto", ["consul", "nomad", "vault"], silent);
    expect(result.probed).toEqual([]);
    expect(result.sources).toEqual({ consul: "release", nomad: "release", vault: "release" });
    expect(result.line).toContain("verified earlier and cached");
  });

  it("auto: offline, a cached release is kept and only the missing ones are built", async () => {
    const result = await plan("auto", ["consul"], silent);
    expect(result.probed).toEqual([["nomad", "vault"]]);
    expect(result.sources).toEqual({ consul: "release", nomad: "build", vault: "build" });
    expect(result.line).toContain("local builds for nomad, vault");
    expect(result.line).toContain("; consul verified earlier and cached");
  });

  it("upload and download are explicit and never probe", async () => {
    const upload = await plan("upload", ["consul"], answers);
    expect(upload.sources).toEqual({ consul: "build", nomad: "build", vault: "build" });
    expect(upload.probed).toEqual([]);
    const download = await plan("download", [], silent);
    expect(download.sources).toEqual({ consul: "release", nomad: "release", vault: "release" });
    expect(download.probed).toEqual([]);
    expect(download.line).toContain("(install.method: download)");
  });
});

describe("release server probe", () => {
  let server: Server;
  let url = "";
  let closedPort = 0;
  const sockets = new Set<import("node:net").Socket>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === "/ok") res.writeHead(200).end("sums\n");
      else if (req.url === "/busy") res.writeHead(503).end();
      else if (req.url === "/hang")
        return; // answers nothing
      else res.writeHead(404).end();
    });
    server.on("connection", (s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // a port nothing listens on: bound, noted, closed
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("answers when every URL is served with 200", async () => {
    expect(await probeUrls([`${url}/ok`, `${url}/ok`], 2000)).toMatchObject({ answers: true });
  });

  it("does not answer on a refused connection, naming the URL and the error", async () => {
    const outcome = await probeUrls([`http://127.0.0.1:${closedPort}/ok`], 2000);
    expect(outcome).toMatchObject({
      answers: false,
      reason: `http://127.0.0.1:${closedPort}/ok: connection refused (ECONNREFUSED)`,
    });
  });

  it("gives up after the timeout on a server that sends nothing", async () => {
    const started = Date.now();
    const outcome = await probeUrls([`${url}/ok`, `${url}/hang`], 300);
    expect(outcome).toMatchObject({ answers: false, reason: `${url}/hang sent no answer within 300 ms` });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("does not answer on a 5xx or a missing release, naming the status", async () => {
    expect(await probeUrls([`${url}/busy`], 2000)).toMatchObject({ answers: false, reason: `${url}/busy answered HTTP 503` });
    expect(await probeUrls([`${url}/ok`, `${url}/gone`], 2000)).toMatchObject({
      answers: false,
      reason: `${url}/gone answered HTTP 404`,
    });
  });

  it("asks for the first missing release's SHA256SUMS, and for the signing key only when its keyring is not cached", async () => {
    const source = { releasesUrl, signingKeyUrl: "https://keys.example/k.txt", fingerprint: "A".repeat(40) };
    expect(probeTargets([{ name: "nomad", version: "1.11.3" }], source, "/nonexistent-cache")).toEqual([
      "https://releases.example/nomad/1.11.3/nomad_1.11.3_SHA256SUMS",
      "https://keys.example/k.txt",
    ]);
    expect(probeTargets([], source, "/nonexistent-cache")).toEqual([]);
    const cache = await tempDir("probe-cache");
    try {
      await mkdir(join(signingKeyringPath(source.fingerprint, cache.path), ".."), { recursive: true });
      await writeFile(signingKeyringPath(source.fingerprint, cache.path), "");
      expect(probeTargets([{ name: "vault", version: "1.21.0" }], source, cache.path)).toEqual([
        "https://releases.example/vault/1.21.0/vault_1.21.0_SHA256SUMS",
      ]);
    } finally {
      await cache.remove();
    }
  });
});
