/**
 * More decode threads than the process has cores: the server keeps the setting, says so in one
 * warning naming the cores, and serves (slower, not wrong).
 */
import { describe, it, expect, beforeAll } from "vitest";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { spawnCli, waitHealthy } from "../helpers/cli.js";
import { usableCores } from "../../src/engine/threads.js";

let modelPath: string;
beforeAll(async () => {
  modelPath = await scriptedModel(["Still here."]);
});

describe("model.threads above the cores", () => {
  it("warns with the core count, loads with the threads asked for and answers", async () => {
    const cores = usableCores();
    const threads = cores + 1;
    const cli = spawnCli(["--model", modelPath, "--alias", "m", "--port", "0", "--host", "127.0.0.1", "--ctx-size", "256", "--parallel", "1", "--threads", String(threads)]);
    try {
      const url = await cli.url;
      await waitHealthy(url);
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none" });
      const reply = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
      expect(reply.choices[0]!.message.content).toBe("Still here.");

      const logs = cli
        .stdout()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { level: number; msg: string; threads?: number });
      const warnings = logs.filter((l) => l.level === 40 && l.msg.startsWith("model.threads is"));
      expect(warnings.map((l) => l.msg)).toEqual([
        expect.stringContaining(`model.threads is ${threads} but this process may use ${cores} core${cores === 1 ? "" : "s"}`),
      ]);
      expect(logs.find((l) => l.msg === "model loaded" && l.threads !== undefined)?.threads).toBe(threads);
    } finally {
      cli.child.kill("SIGTERM");
    }
    expect(await cli.exit).toEqual({ code: 0, signal: null });
  });
});
