/**
 * The CLI forks the model worker with two keys of config/default.yaml read from its text, before
 * the YAML parser loads: they must be what the full loader reads, or every start forks twice.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { DEFAULT_CONFIG_FILE, readShippedWorkerSettings, shippedWorkerSettings } from "../../src/config/shipped.js";

describe("the shipped worker settings read without the YAML parser", () => {
  it("are the loaded configuration's defaults", () => {
    const { workerHeapMB, hugePages } = loadConfig({}, {}).model;
    expect(readShippedWorkerSettings()).toEqual({ workerHeapMB, hugePages });
    expect(shippedWorkerSettings(readFileSync(DEFAULT_CONFIG_FILE, "utf8"))).toEqual({ workerHeapMB, hugePages });
  });

  it("come from the top-level model block only, past comments and blank lines", () => {
    const text = [
      "server:",
      "  workerHeapMB: 1",
      "  hugePages: false",
      "model: # the model",
      "  # a comment",
      "# a comment at the margin",
      "",
      "  workerHeapMB: 512   # MiB",
      "  nested:",
      "    hugePages: false",
      "  hugePages: true",
      "limits:",
      "  hugePages: false",
      "",
    ].join("\n");
    expect(shippedWorkerSettings(text)).toEqual({ workerHeapMB: 512, hugePages: true });
  });

  it("are undefined when a key is missing, outside the block or not plainly written", () => {
    expect(shippedWorkerSettings("model:\n  workerHeapMB: 256\n")).toBeUndefined();
    expect(shippedWorkerSettings("model:\n  workerHeapMB: 256\nlimits:\n  hugePages: true\n")).toBeUndefined();
    expect(shippedWorkerSettings("model:\n  workerHeapMB: '256'\n  hugePages: true\n")).toBeUndefined();
    expect(shippedWorkerSettings("model:\n  workerHeapMB: 256\n  hugePages: yes\n")).toBeUndefined();
    expect(shippedWorkerSettings("model: {workerHeapMB: 256, hugePages: true}\n")).toBeUndefined();
  });
});
