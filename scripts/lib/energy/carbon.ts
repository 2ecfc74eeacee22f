/**
 * Grid carbon intensity (gCO2e/kWh) and CO2e integration.
 *
 * CO2e = energy (kWh) × PUE × intensity, computed every interval with the
 * intensity in force then, so a changing grid is weighted by when energy was
 * used rather than averaged afterwards.
 */
export const joulesPerKwh = 3.6e6;

/**
 * Yearly average grid intensities, gCO2e/kWh, rounded. Source: Ember, "Yearly
 * electricity data" (2023 values, https://ember-energy.org/data/yearly-electricity-data/),
 * carried over by hand without network access here: check them against the
 * source before relying on them for reporting, and override with
 * `carbon.intensity` when you have a better figure (your supplier's, say).
 */
export const staticIntensities: Record<string, number> = {
  WORLD: 480,
  FR: 56,
  DE: 381,
  GB: 238,
  IE: 282,
  NL: 268,
  ES: 174,
  SE: 41,
  PL: 662,
  US: 369,
  IN: 713,
  CN: 582,
};

export interface Intensity {
  gramsPerKwh: number;
  source: "static" | "live";
  provider: string;
}

export function co2eGrams(joules: number, pue: number, gramsPerKwh: number): number {
  return (joules / joulesPerKwh) * pue * gramsPerKwh;
}

export interface LiveProvider {
  name: string;
  fetch(signal: AbortSignal): Promise<number>;
}

/**
 * UK National Grid ESO Carbon Intensity API (https://carbonintensity.org.uk,
 * docs at https://carbon-intensity.github.io/api-definitions/). National:
 * GET /intensity → {"data":[{"from","to","intensity":{"forecast","actual","index"}}]};
 * regional: GET /regional/regionid/{id} → {"data":[{"regionid",…,"data":[{"intensity":{"forecast",…}}]}]}.
 */
export function ukCarbonIntensity(baseUrl: string, regionId?: number): LiveProvider {
  const url = `${baseUrl.replace(/\/$/, "")}${regionId === undefined ? "/intensity" : `/regional/regionid/${regionId}`}`;
  return {
    name: "uk-carbon-intensity",
    async fetch(signal) {
      const response = await fetch(url, { signal, headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
      const body = (await response.json()) as {
        data?: { intensity?: Reading; data?: { intensity?: Reading }[] }[];
      };
      const entry = body.data?.[0];
      const reading = regionId === undefined ? entry?.intensity : entry?.data?.[0]?.intensity;
      const value = reading?.actual ?? reading?.forecast;
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        throw new Error(`${url} returned no usable intensity`);
      }
      return value;
    },
  };
}

interface Reading {
  forecast?: number;
  actual?: number | null;
}

/**
 * The intensity in use: the static value, replaced by the live provider's
 * answer while it is fresh. Refreshes never block a sample: they run in the
 * background, time out, and on failure the last good live value is kept until
 * it is older than `maxAgeMs`, then the static value comes back.
 */
export class IntensityCache {
  errors = 0;
  private live: { value: number; atMs: number } | undefined;
  private inFlight: Promise<void> | undefined;
  private lastAttemptMs = -Infinity;

  constructor(
    private readonly fallback: number,
    private readonly provider: LiveProvider | undefined,
    private readonly options: { ttlMs: number; timeoutMs: number; maxAgeMs: number; now?: () => number },
  ) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  current(): Intensity {
    const now = this.now();
    if (this.provider && now - this.lastAttemptMs >= this.options.ttlMs) void this.refresh();
    if (this.provider && this.live && now - this.live.atMs <= this.options.maxAgeMs) {
      return { gramsPerKwh: this.live.value, source: "live", provider: this.provider.name };
    }
    return { gramsPerKwh: this.fallback, source: "static", provider: "static" };
  }

  /** Fetch now (also used by tests to wait for the background refresh). */
  refresh(): Promise<void> {
    if (!this.provider) return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    this.lastAttemptMs = this.now();
    const provider = this.provider;
    this.inFlight = provider
      .fetch(AbortSignal.timeout(this.options.timeoutMs))
      .then((value) => {
        this.live = { value, atMs: this.now() };
      })
      .catch(() => {
        this.errors++;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}
