/**
 * Push an image to a registry over the Distribution HTTP API (v2): blobs that
 * the registry already has are skipped (HEAD), blobs of another repository are
 * mounted instead of sent again, the rest go up in one PUT each, then the
 * manifest. Plain HTTP: used only against the push-side registry on 127.0.0.1.
 */
import { createReadStream } from "node:fs";
import { request } from "node:http";
import { OperationError } from "../errors.ts";
import { type Blob, type BuiltImage, mediaTypes } from "./oci.ts";

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(url: URL, method: string, options: { headers?: Record<string, string>; body?: Blob } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body) headers["content-length"] = options.body.size;
    else if (method === "PUT" || method === "POST") headers["content-length"] = 0;
    const req = request(url, { method, headers, timeout: 600_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body.length < 4096 ? (body += chunk) : undefined));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${method} ${url.pathname} timed out`)));
    if (options.body?.bytes) req.end(options.body.bytes);
    else if (options.body?.path) createReadStream(options.body.path).on("error", reject).pipe(req);
    else req.end();
  });
}

function fail(what: string, answer: HttpAnswer): never {
  throw new OperationError(`The registry refused ${what} (HTTP ${answer.status}).`, {
    details: answer.body.trim().split("\n").slice(0, 5),
  });
}

export interface PushResult {
  reference: string;
  uploadedBytes: number;
  skippedBlobs: number;
}

/** Push one image; `mountFrom` names repositories whose blobs the registry may link instead of receiving them. */
export async function pushImage(base: string, image: BuiltImage, mountFrom: string[] = []): Promise<PushResult> {
  const root = new URL(base);
  const url = (path: string) => new URL(path, root);
  let uploadedBytes = 0;
  let skippedBlobs = 0;
  for (const blob of [...image.layers, image.config]) {
    const head = await call(url(`/v2/${image.repository}/blobs/${blob.digest}`), "HEAD");
    if (head.status === 200) {
      skippedBlobs++;
      continue;
    }
    let location: string | undefined;
    for (const from of mountFrom.filter((r) => r !== image.repository)) {
      const mount = await call(
        url(`/v2/${image.repository}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`),
        "POST",
      );
      if (mount.status === 201) break;
      if (mount.status === 202) {
        // not in that repository: the registry opened an upload instead
        location = String(mount.headers.location);
        continue;
      }
      fail(`a blob mount for ${image.repository}`, mount);
    }
    const mounted = (await call(url(`/v2/${image.repository}/blobs/${blob.digest}`), "HEAD")).status === 200;
    if (mounted) {
      skippedBlobs++;
      continue;
    }
    if (!location) {
      const start = await call(url(`/v2/${image.repository}/blobs/uploads/`), "POST");
      if (start.status !== 202) fail(`an upload to ${image.repository}`, start);
      location = String(start.headers.location);
    }
    const target = new URL(location, root);
    target.searchParams.set("digest", blob.digest);
    const put = await call(target, "PUT", { headers: { "content-type": "application/octet-stream" }, body: blob });
    if (put.status !== 201) fail(`blob ${blob.digest} for ${image.repository}`, put);
    uploadedBytes += blob.size;
  }
  const manifest = await call(url(`/v2/${image.repository}/manifests/${image.tag}`), "PUT", {
    headers: { "content-type": mediaTypes.manifest },
    body: image.manifest,
  });
  if (manifest.status !== 201) fail(`the manifest of ${image.repository}:${image.tag}`, manifest);
  return { reference: `${image.repository}:${image.tag}`, uploadedBytes, skippedBlobs };
}

/** Whether the registry at base already serves this exact manifest under its tag. */
export async function hasImage(base: string, image: BuiltImage): Promise<boolean> {
  const answer = await call(new URL(`/v2/${image.repository}/manifests/${image.tag}`, base), "HEAD", {
    headers: { accept: mediaTypes.manifest },
  }).catch(() => undefined);
  return answer?.status === 200 && answer.headers["docker-content-digest"] === image.manifest.digest;
}
