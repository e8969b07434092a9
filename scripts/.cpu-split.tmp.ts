// Starts a server command, runs C concurrent bench requests, reports CPU seconds per process (and per thread name) during the load.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { runLoad, summarize, type RequestSpec } from "./bench/load.js";
import { textOfTokens } from "./lib/prompts.js";
const [which, cStr, port] = [process.argv[2]!, process.argv[3] ?? "8", process.argv[4] ?? "18300"];
const C = Number(cStr);
const model = "models/synthetic-qwen3-0.6b-q8_0-cf0f810d87b34b62.gguf";
const cmd = which === "edgellm"
  ? [process.execPath, ["dist/cli.js", "--model", model, "--alias", "bench", "--port", port, "--parallel", "8", "--ctx-size", "1536", "--threads", "2", "--log-level", "warn", "--set", "model.kvPool=unified", "--set", "model.kvPoolTokens=12288", ...(process.argv.slice(5))]]
  : ["vendor-build/llama.cpp/build/bin/llama-server", ["-m", model, "--alias", "bench", "--host", "127.0.0.1", "--port", port, "-t", "2", "-tb", "2", "-np", "8", "-c", "12288", "-cb", "-fa", "auto", "--kv-unified"]];
const child = spawn(cmd[0] as string, cmd[1] as string[], { stdio: "ignore" });
const baseURL = `http://127.0.0.1:${port}/v1`;
for (;;) { try { if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200) break; } catch {} await new Promise((r) => setTimeout(r, 200)); }
function tree(root: number): number[] { const out = [root]; for (const p of readdirSync("/proc")) { if (!/^\d+$/.test(p)) continue; try { const st = readFileSync(`/proc/${p}/stat`, "utf8"); const ppid = Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]); if (ppid === root) out.push(...tree(Number(p))); } catch {} } return out; }
function threads(pid: number): Map<string, number> { const m = new Map<string, number>(); for (const t of readdirSync(`/proc/${pid}/task`)) { try { const st = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8"); const name = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")")); const f = st.slice(st.lastIndexOf(")") + 2).split(" "); m.set(`${pid}/${name}#${t}`, (Number(f[11]) + Number(f[12])) / 100); } catch {} } return m; }
const snap = () => { const all = new Map<string, number>(); for (const p of tree(child.pid!)) for (const [k, v] of threads(p)) all.set(k, v); return all; };
const jobs = (seedBase: number): RequestSpec[][] => Array.from({ length: 2 * C }, (_, i) => [{ messages: [{ role: "user", content: textOfTokens(128, seedBase + i) }], maxTokens: 64, seed: seedBase + i }]);
await runLoad({ baseURL: baseURL.replace(/\/v1$/, ""), model: "bench" }, jobs(500).slice(0, C), C);
const before = snap();
const load = await runLoad({ baseURL: baseURL.replace(/\/v1$/, ""), model: "bench" }, jobs(C * 1000), C);
const after = snap();
const s = summarize(load);
console.log(which, `C=${C}`, `${s.outTokS.toFixed(2)} tok/s`, `ITL p50 ${s.itlP50.toFixed(0)} wall ${s.wallS.toFixed(1)} s`);
const byProc = new Map<string, number>();
for (const [k, v] of after) { const d = v - (before.get(k) ?? 0); if (d < 0.05) continue; console.log(`  ${k} ${d.toFixed(2)} s`); const pid = k.split("/")[0]!; byProc.set(pid, (byProc.get(pid) ?? 0) + d); }
for (const [p, v] of byProc) console.log(`  pid ${p}: ${v.toFixed(2)} cpu-s = ${(v / s.wallS * 100).toFixed(0)}% of wall`);
child.kill("SIGTERM");
