/**
 * The docker profile's image build and push (scripts/lib/images/publish.ts's
 * buildAndPush): once cold — an empty layer cache and an empty registry, as on
 * a first bootstrap — then again with both filled, as on every later run.
 * The node image, Fabio and the registry binary are cached beforehand: their
 * build is not part of it.
 */
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { ensureBinary } from "../binaries/build.ts";
import { tools } from "../binaries/catalog.ts";
import { ensureRegistryBinary } from "../images/registry-server.ts";
import { ensureImage } from "../providers/local/image.ts";
import { buildAndPush, type ImagePublishResult } from "../images/publish.ts";
import { withIsolatedState } from "./isolated-state.ts";

export interface ImagePassFigures {
  buildSeconds: number;
  pushSeconds: number;
  totalSeconds: number;
  layersBuilt: number;
  imagesPushed: number;
  uploadedMb: number;
}

export interface ImageFigures {
  images: number;
  cold: ImagePassFigures;
  cached: ImagePassFigures;
  /** cold total / cached total */
  coldOverCached: number;
}

const round = (n: number) => Math.round(n * 10) / 10;

function pass(result: ImagePublishResult, totalSeconds: number): ImagePassFigures {
  return {
    buildSeconds: round(result.buildSeconds),
    pushSeconds: round(result.pushSeconds),
    totalSeconds: round(totalSeconds),
    layersBuilt: result.layersBuilt,
    imagesPushed: result.pushed.length,
    uploadedMb: round(result.uploadedBytes / 1e6),
  };
}

export async function benchImages(log: (line: string) => void): Promise<ImageFigures> {
  await ensureImage(log);
  await ensureBinary(tools.fabio, { log });
  await ensureRegistryBinary(log);
  // the layer cache and the registry's storage both live in the temp dir, removed afterwards
  return withIsolatedState("bench-images", async (dir) => {
    const state = { root: join(dir, "state", "benchimages") };
    const cacheDir = await mkdtemp(join(dir, "oci-"));
    const timed = async () => {
      const started = Date.now();
      const result = await buildAndPush(state, log, { cacheDir });
      return pass(result, (Date.now() - started) / 1000);
    };
    const cold = await timed();
    log(`cold: ${cold.totalSeconds} s`);
    const cached = await timed();
    log(`cached: ${cached.totalSeconds} s`);
    return {
      images: cold.imagesPushed,
      cold,
      cached,
      coldOverCached: round(cold.totalSeconds / Math.max(cached.totalSeconds, 0.1)),
    };
  });
}
