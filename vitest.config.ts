import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // e2e suites arrive with the local provider; an empty project must not fail `npm run test:e2e`
    passWithNoTests: true,
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 20_000 },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // real agents bind fixed ports on loopback addresses: one file at a time
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
