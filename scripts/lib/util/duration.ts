/** Go-style durations as used by HashiCorp configs ("72h", "30m", "1h30m", "87600h"). */
const unitSeconds: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
const durationPattern = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;

export function isDuration(text: string): boolean {
  return durationPattern.test(text);
}

export function durationSeconds(text: string): number {
  if (!isDuration(text)) throw new Error(`not a duration: ${text}`);
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(match[1]) * (unitSeconds[match[2] as string] ?? 0);
  }
  return total;
}
