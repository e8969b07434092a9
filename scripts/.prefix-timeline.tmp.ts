import { streamChat, type RequestSpec } from "./bench/load.js";
import { textOfTokens } from "./lib/prompts.js";
const baseURL = process.argv[2]!;
const sharedSystem = textOfTokens(1000, 424242);
const t0 = performance.now();
const rows: string[] = [];
await Promise.all(Array.from({ length: 8 }, async (_, u) => {
  for (let q = 0; q < 2; q++) {
    const seed = 90_000 + 1000 + u * 10 + q;
    const spec: RequestSpec = { messages: [{ role: "system", content: sharedSystem }, { role: "user", content: textOfTokens(24, seed) }], maxTokens: 32, seed };
    const start = performance.now() - t0;
    const r = await streamChat({ baseURL, model: "bench" }, spec);
    rows.push(`u${u} q${q} start ${(start / 1000).toFixed(2)} ttft ${(r.ttftMs / 1000).toFixed(2)} firstAt ${((start + r.ttftMs) / 1000).toFixed(2)} end ${((start + r.e2eMs) / 1000).toFixed(2)} cached ${r.cachedTokens}/${r.promptTokens}`);
  }
}));
console.log(rows.sort((a, b) => Number(a.split("firstAt ")[1]!.split(" ")[0]) - Number(b.split("firstAt ")[1]!.split(" ")[0])).join("\n"));
console.log("wall", ((performance.now() - t0) / 1000).toFixed(1));
