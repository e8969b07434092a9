/** Runs the real CLI (or the container entrypoint) as a child process and finds where it listens. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  /** Base URL, from the "listening" log line. */
  url: Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Own process group, so a test can signal the whole group as a terminal's Ctrl+C does. */
  detached?: boolean;
}

/** `node --import tsx src/cli.ts ...args`, or `command` instead (e.g. the entrypoint script). */
export function spawnCli(args: string[], options: SpawnOptions = {}, command: string[] = ["node", "--import", "tsx", "src/cli.ts"]): CliProcess {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("EDGELLM_")));
  const child = spawn(command[0]!, [...command.slice(1), ...args], {
    cwd: REPO_ROOT,
    env: { ...env, ...options.env },
    detached: options.detached ?? false,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const url = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (match) resolve(match[1]!);
    });
    void exit.then(({ code, signal }) => reject(new Error(`exited (code ${code}, signal ${signal}) before listening; stderr: ${err}`)));
  });
  url.catch(() => {});
  return { child, url, exit, stdout: () => out, stderr: () => err };
}

/** Polls /health until it answers 200. */
export async function waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/health`).catch(() => null);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not healthy within ${timeoutMs} ms`);
}

/** The pid and command line of `root` and of every process below it. */
export function processTree(root: number): { pid: number; line: string }[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const lines: { pid: number; line: string }[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    try {
      lines.push({ pid, line: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim() });
    } catch {
      // exited meanwhile
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return lines;
}
