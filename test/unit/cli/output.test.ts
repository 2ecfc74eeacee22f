import { describe, expect, it } from "vitest";
import { createReporter, formatDuration, type ReporterClock } from "../../../scripts/lib/cli/output.ts";

/** A clock that moves only when told to, firing the interval timers it passes. */
function fakeClock(): ReporterClock & { advance(ms: number): void; timers: number } {
  let now = 0;
  const timers = new Map<number, { callback: () => void; every: number; next: number }>();
  let ids = 0;
  return {
    now: () => now,
    setInterval(callback, every) {
      const id = ids++;
      timers.set(id, { callback, every, next: now + every });
      return id;
    },
    clearInterval(handle) {
      timers.delete(handle as number);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.values()].filter((t) => t.next <= end).sort((a, b) => a.next - b.next)[0];
        if (!due) break;
        now = due.next;
        due.next += due.every;
        due.callback();
      }
      now = end;
    },
    get timers() {
      return timers.size;
    },
  };
}

describe("progress without a terminal", () => {
  it("a build says when it starts and ends, and a heartbeat names what runs and for how long at least once a minute", () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const reporter = createReporter({ tty: false, clock, write: (l) => lines.push(l) });
    const step = reporter.step("prepare");
    clock.advance(5_000);
    const build = reporter.activity("building nomad 1.10.0 from source");
    expect(lines).toEqual(["→ prepare …", "• building nomad 1.10.0 from source …"]);
    clock.advance(32 * 60_000);
    const beats = lines.filter((l) => l.includes("still running"));
    expect(beats).toHaveLength(32);
    expect(beats[0]).toBe("• still running: prepare (1m 0s), building nomad 1.10.0 from source (55s)");
    expect(beats.at(-1)).toBe("• still running: prepare (32m 0s), building nomad 1.10.0 from source (31m 55s)");
    build.done("built in 1920s");
    expect(lines.at(-1)).toBe("• building nomad 1.10.0 from source: built in 1920s (1920.0s)");
    clock.advance(60_000);
    expect(lines.at(-1)).toBe("• still running: prepare (33m 0s)");
    step.done("3 binaries uploaded");
    expect(lines.at(-1)).toBe("✔ prepare: 3 binaries uploaded (1985.0s)");
    // nothing open: no timer, no more lines
    expect(clock.timers).toBe(0);
    const count = lines.length;
    clock.advance(10 * 60_000);
    expect(lines).toHaveLength(count);
  });

  it("a failed download ends with a warning line and stops being named", () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const reporter = createReporter({ tty: false, clock, write: (l) => lines.push(l), heartbeatMs: 30_000 });
    const download = reporter.activity("downloading vault 1.20.0 (HashiCorp release)");
    clock.advance(30_000);
    expect(lines.at(-1)).toBe("• still running: downloading vault 1.20.0 (HashiCorp release) (30s)");
    download.fail();
    download.fail(); // ending twice is harmless
    expect(lines.at(-1)).toBe("! downloading vault 1.20.0 (HashiCorp release): failed (30.0s)");
    expect(clock.timers).toBe(0);
  });

  it("formats durations for people", () => {
    expect(formatDuration(999)).toBe("0s");
    expect(formatDuration(75_000)).toBe("1m 15s");
    expect(formatDuration(3_723_000)).toBe("1h 2m 3s");
  });
});
