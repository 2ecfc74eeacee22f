/**
 * CO2e integration and the live intensity provider. There is no internet
 * here: the UK Carbon Intensity API is played by an in-process HTTP server
 * that serves the response format documented at
 * https://carbon-intensity.github.io/api-definitions/.
 */
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { co2eGrams, IntensityCache, ukCarbonIntensity } from "../../../scripts/lib/energy/carbon.ts";

describe("CO2e", () => {
  it("is kWh × PUE × intensity", () => {
    expect(co2eGrams(3.6e6, 1.2, 250)).toBeCloseTo(300, 9);
  });

  it("integrates per interval, so a changing intensity is weighted by when energy was used", () => {
    // 1 kWh at 100 g/kWh while the grid is clean, then 3 kWh at 400 g/kWh
    const intervals = [
      { joules: 3.6e6, intensity: 100 },
      { joules: 3 * 3.6e6, intensity: 400 },
    ];
    const integrated = intervals.reduce((g, i) => g + co2eGrams(i.joules, 1, i.intensity), 0);
    expect(integrated).toBeCloseTo(1300, 9);
    // the naive figure (total energy × mean intensity) would be 4 × 250 = 1000 g
    expect(integrated).not.toBeCloseTo(1000, 0);
  });
});

describe("the UK Carbon Intensity provider", () => {
  let server: Server;
  let base: string;
  let mode: "national" | "down" | "garbage" | "slow" = "national";
  let requests = 0;
  let value = 180;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      if (mode === "down") return res.writeHead(503).end("maintenance");
      if (mode === "garbage") return res.writeHead(200, { "Content-Type": "application/json" }).end('{"data":[]}');
      if (mode === "slow") return void setTimeout(() => res.writeHead(200).end("{}"), 2000);
      const period = { from: "2026-11-22T04:00Z", to: "2026-11-22T04:30Z" };
      if (req.url === "/intensity") {
        return res
          .writeHead(200, { "Content-Type": "application/json" })
          .end(JSON.stringify({ data: [{ ...period, intensity: { forecast: value + 10, actual: value, index: "moderate" } }] }));
      }
      if (req.url === "/regional/regionid/13") {
        return res.writeHead(200, { "Content-Type": "application/json" }).end(
          JSON.stringify({
            data: [
              {
                regionid: 13,
                dnoregion: "UKPN London",
                shortname: "London",
                data: [{ ...period, intensity: { forecast: 95, index: "low" }, generationmix: [{ fuel: "gas", perc: 20 }] }],
              },
            ],
          }),
        );
      }
      res.writeHead(404).end();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("reads the national actual value and a regional forecast", async () => {
    mode = "national";
    expect(await ukCarbonIntensity(base).fetch(AbortSignal.timeout(1000))).toBe(180);
    expect(await ukCarbonIntensity(base, 13).fetch(AbortSignal.timeout(1000))).toBe(95);
  });

  it("caches for the TTL, then refreshes", async () => {
    mode = "national";
    let now = 0;
    const cache = new IntensityCache(250, ukCarbonIntensity(base), {
      ttlMs: 60_000,
      timeoutMs: 1000,
      maxAgeMs: 600_000,
      now: () => now,
    });
    expect(cache.current()).toMatchObject({ gramsPerKwh: 250, source: "static" }); // first call starts the fetch
    await cache.refresh();
    const before = requests;
    now = 30_000;
    expect(cache.current()).toMatchObject({ gramsPerKwh: 180, source: "live", provider: "uk-carbon-intensity" });
    expect(requests).toBe(before); // within the TTL: no request
    value = 220;
    now = 61_000;
    cache.current(); // past the TTL: refresh in the background
    await cache.refresh();
    expect(cache.current().gramsPerKwh).toBe(220);
    value = 180;
  });

  it("falls back to the static value on errors, timeouts and bad answers once the live value is too old", async () => {
    let now = 0;
    mode = "national";
    const cache = new IntensityCache(250, ukCarbonIntensity(base), {
      ttlMs: 1000,
      timeoutMs: 300,
      maxAgeMs: 5000,
      now: () => now,
    });
    await cache.refresh();
    expect(cache.current().source).toBe("live");
    mode = "down";
    now = 2000;
    cache.current();
    await cache.refresh();
    expect(cache.errors).toBe(1);
    expect(cache.current()).toMatchObject({ source: "live", gramsPerKwh: 180 }); // still fresh enough
    now = 6000;
    mode = "slow";
    await cache.refresh();
    mode = "garbage";
    now = 7500;
    await cache.refresh();
    expect(cache.errors).toBe(3);
    expect(cache.current()).toMatchObject({ source: "static", gramsPerKwh: 250 });
  });

  it("falls back when the host does not answer at all", async () => {
    const cache = new IntensityCache(56, ukCarbonIntensity("http://127.0.0.1:9"), {
      ttlMs: 1000,
      timeoutMs: 500,
      maxAgeMs: 1000,
    });
    await cache.refresh();
    expect(cache.errors).toBe(1);
    expect(cache.current()).toMatchObject({ source: "static", gramsPerKwh: 56 });
  });
});
