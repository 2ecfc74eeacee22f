import { describe, expect, it } from "vitest";
import { ApiError, unlessMissing } from "../../../scripts/lib/clients/http.ts";

const apiError = (status: number | undefined, message = "boom") =>
  new ApiError("nomad", "GET", "/v1/job/x", status, message, "https://127.0.0.1:4646");

describe("unlessMissing", () => {
  it("answers undefined for a 404, the answer when there is one, and throws every other error", async () => {
    expect(await unlessMissing(Promise.reject(apiError(404)))).toBeUndefined();
    expect(await unlessMissing(Promise.resolve({ ID: "x" }))).toEqual({ ID: "x" });
    await expect(unlessMissing(Promise.reject(apiError(403)))).rejects.toMatchObject({ status: 403 });
    await expect(unlessMissing(Promise.reject(apiError(undefined, "ECONNREFUSED")))).rejects.toBeInstanceOf(ApiError);
    await expect(unlessMissing(Promise.reject(new TypeError("bug")))).rejects.toBeInstanceOf(TypeError);
  });

  it("takes the API's own idea of missing where it differs (Consul: 'not found' in a 403)", async () => {
    const consulMissing = (e: ApiError) => e.status === 404 || /not found/i.test(e.apiMessage);
    expect(await unlessMissing(Promise.reject(apiError(403, "ACL not found")), consulMissing)).toBeUndefined();
    await expect(unlessMissing(Promise.reject(apiError(403, "Permission denied")), consulMissing)).rejects.toThrow();
  });
});
