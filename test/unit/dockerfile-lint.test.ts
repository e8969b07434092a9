/**
 * Lints the Dockerfile. hadolint (a Haskell binary) is in neither Debian nor npm, so this runs
 * dockerfile-utils (the validator behind the VS Code Docker language server: syntax, flags,
 * stages, duplicate CMD/ENTRYPOINT/HEALTHCHECK) plus the hadolint rules that matter for this
 * image, checked on the parsed instructions and reported under hadolint's rule ids.
 */
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { validate, ValidationSeverity } from "dockerfile-utils";
import { REPO_ROOT } from "../helpers/cli.js";

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comments dropped. */
function parse(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | null = null;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (pending === null && (line === "" || line.startsWith("#"))) return;
    if (pending !== null && line.startsWith("#")) return;
    const joined = pending === null ? { text: line, line: i + 1 } : { text: `${pending.text} ${line}`, line: pending.line };
    if (line.endsWith("\\")) {
      pending = { text: joined.text.slice(0, -1).trimEnd(), line: joined.line };
      return;
    }
    pending = null;
    const [keyword = "", ...rest] = joined.text.split(/\s+/);
    out.push({ keyword: keyword.toUpperCase(), args: rest.join(" "), line: joined.line });
  });
  return out;
}

/** hadolint's rules for what this image does, by id; returns "DLxxxx line N: why" for each hit. */
function hadolintRules(text: string): string[] {
  const found: string[] = [];
  const hit = (id: string, ins: Instruction, why: string) => found.push(`${id} line ${ins.line}: ${why}`);
  const instructions = parse(text);
  const args = new Map<string, string>();
  const stages: string[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "ARG") {
      const [name, value] = ins.args.split("=");
      if (name && value !== undefined) args.set(name, value);
    }
    if (ins.keyword === "FROM") {
      const [image = "", as, alias] = ins.args.split(/\s+/);
      const resolved = image.replace(/^\$\{?(\w+)\}?$/, (_, name: string) => args.get(name) ?? image);
      if (!stages.includes(resolved.toLowerCase()) && !resolved.includes("@")) {
        const tag = resolved.split("/").at(-1)!.split(":")[1];
        if (tag === undefined) hit("DL3006", ins, `always tag the version of an image explicitly (${resolved})`);
        else if (tag === "latest") hit("DL3007", ins, `using latest is prone to errors (${resolved})`);
      }
      if (as?.toUpperCase() === "AS" && alias) stages.push(alias.toLowerCase());
    }
    if (ins.keyword === "COPY") {
      const from = /--from=(\S+)/.exec(ins.args)?.[1];
      if (from && !stages.includes(from.toLowerCase())) hit("DL3022", ins, `COPY --from should reference a previously defined FROM alias (${from})`);
    }
    if (ins.keyword === "ADD") hit("DL3020", ins, "use COPY instead of ADD for files and folders");
    if (ins.keyword === "WORKDIR" && !ins.args.startsWith("/")) hit("DL3000", ins, "use absolute WORKDIR");
    if ((ins.keyword === "CMD" || ins.keyword === "ENTRYPOINT") && !ins.args.startsWith("[")) hit("DL3025", ins, "use arguments JSON notation for CMD and ENTRYPOINT");
    if (ins.keyword === "RUN") {
      const run = ins.args;
      for (const install of run.match(/apt-get\s+install[^&;|]*/g) ?? []) {
        if (!/\s-y\b|--yes|--assume-yes/.test(install)) hit("DL3014", ins, "use the -y switch to avoid manual input");
        if (!install.includes("--no-install-recommends")) hit("DL3015", ins, "avoid additional packages by specifying --no-install-recommends");
        const packages = install.split(/\s+/).slice(2).filter((w) => w && !w.startsWith("-"));
        for (const p of packages) if (!p.includes("=")) hit("DL3008", ins, `pin versions in apt-get install (${p})`);
        if (!/rm -rf \/var\/lib\/apt\/lists/.test(run)) hit("DL3009", ins, "delete the apt-get lists after installing something");
      }
      if (/\bapt\s+install\b/.test(run)) hit("DL3027", ins, "do not use apt, use apt-get");
      if (/\bsudo\b/.test(run)) hit("DL3004", ins, "do not use sudo");
      if (/\|/.test(run.replace(/\|\|/g, "")) && !instructions.some((s) => s.keyword === "SHELL" && s.args.includes("pipefail"))) {
        hit("DL4006", ins, "set the SHELL option -o pipefail before RUN with a pipe in it");
      }
      // hadolint's DL3016: a package named on `npm install` must carry a version.
      const npmInstall = /\bnpm (?:install|i)\b([^&;|]*)/.exec(run);
      const named = (npmInstall?.[1] ?? "").split(/\s+/).filter((w) => w && !w.startsWith("-"));
      for (const p of named) if (!/@[^/]*\d/.test(p.replace(/^@/, ""))) hit("DL3016", ins, `pin versions in npm install (${p})`);
    }
  }
  const users = instructions.filter((i) => i.keyword === "USER");
  const lastUser = users.at(-1);
  if (!lastUser || /^(root|0)(:|$)/.test(lastUser.args)) found.push("DL3002: last USER should not be root");
  return found;
}

const ALL_WARNINGS = {
  deprecatedMaintainer: ValidationSeverity.WARNING,
  directiveCasing: ValidationSeverity.WARNING,
  emptyContinuationLine: ValidationSeverity.WARNING,
  instructionCasing: ValidationSeverity.WARNING,
  instructionCmdMultiple: ValidationSeverity.WARNING,
  instructionEntrypointMultiple: ValidationSeverity.WARNING,
  instructionHealthcheckMultiple: ValidationSeverity.WARNING,
  instructionJSONInSingleQuotes: ValidationSeverity.WARNING,
  instructionWorkdirRelative: ValidationSeverity.WARNING,
};

function lint(text: string): string[] {
  return [...validate(text, ALL_WARNINGS).map((d) => `line ${d.range.start.line + 1}: ${d.message}`), ...hadolintRules(text)];
}

describe("Dockerfile", () => {
  const text = readFileSync(`${REPO_ROOT}/Dockerfile`, "utf8");

  it("lints clean", () => {
    expect(lint(text)).toEqual([]);
  });

  it("is multi-stage, non-root, tini as PID 1, models and data volumes, a HEALTHCHECK and env config", () => {
    const ins = parse(text);
    expect(ins.filter((i) => i.keyword === "FROM").length).toBeGreaterThanOrEqual(2);
    expect(ins.filter((i) => i.keyword === "USER").at(-1)!.args).toBe("node");
    expect(ins.find((i) => i.keyword === "ENTRYPOINT")!.args).toMatch(/^\["\/usr\/bin\/tini", "--", "\/app\/docker\/entrypoint.sh"\]$/);
    expect(ins.find((i) => i.keyword === "VOLUME")!.args).toBe('["/models", "/data"]');
    expect(ins.find((i) => i.keyword === "HEALTHCHECK")!.args).toContain("/app/docker/healthcheck.mjs");
    const env = ins.filter((i) => i.keyword === "ENV").map((i) => i.args).join(" ");
    expect(env).toContain("EDGELLM_SERVER_HOST=0.0.0.0");
    expect(env).toContain("EDGELLM_MODEL_DIR=/models");
    // Every file the image copies exists.
    for (const copy of ins.filter((i) => i.keyword === "COPY" && !i.args.includes("--from"))) {
      for (const src of copy.args.split(/\s+/).slice(0, -1)) expect(() => readFileSync(`${REPO_ROOT}/${src}`)).not.toThrowError(/ENOENT/);
    }
  });

  it("compiles the portable unified-KV addon in a builder on the runtime's Debian release and ships it", () => {
    const ins = parse(text);
    const args = new Map(ins.filter((i) => i.keyword === "ARG").map((i) => i.args.split("=") as [string, string]));
    const stages: { image: string; alias: string | undefined; body: Instruction[] }[] = [];
    for (const i of ins) {
      if (i.keyword === "FROM") {
        const [image = "", , alias] = i.args.split(/\s+/);
        stages.push({ image: image.replace(/^\$\{?(\w+)\}?$/, (_, name: string) => args.get(name) ?? image), alias, body: [] });
      } else stages.at(-1)?.body.push(i);
    }
    const build = stages.find((st) => st.alias === "build")!;
    const runtime = stages.at(-1)!;
    expect(build).toBeDefined();
    // The local build is tied to the builder's glibc/libstdc++: same Debian release, slim runtime.
    const release = (image: string) => /^node:[\d.]+-(\w+?)(?:-slim)?$/.exec(image)?.[1];
    expect(release(build.image)).toMatch(/^(bookworm|trixie)$/);
    expect(release(runtime.image)).toBe(release(build.image));
    expect(runtime.image).toMatch(/-slim$/);
    const runs = (st: { body: Instruction[] }) => st.body.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    for (const tool of ["cmake", "g++", "make", "git", "python3"]) expect(runs(build)).toMatch(new RegExp(`apt-get install [^&]*\\s${tool.replaceAll("+", "\\+")}=`));
    expect(runs(build)).toContain("npm run build:addon");
    const pkg = JSON.parse(readFileSync(`${REPO_ROOT}/package.json`, "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts["build:addon"]).toBe("tsx scripts/build-addon.ts --profile portable");
    // Portable CPU flags only: nothing in the image build asks for the native profile.
    expect(ins.map((i) => i.args).join("\n")).not.toMatch(/GGML_NATIVE=ON|march=native|--profile native/);
    expect(runtime.body).toContainEqual(expect.objectContaining({ keyword: "COPY", args: "--from=build /app/node_modules ./node_modules" }));
    expect(runs(runtime)).not.toMatch(/build:addon|cmake|g\+\+/);
  });

  it("the linter catches what it should (it is not a no-op)", () => {
    const bad = [
      "ARG BASE=node:latest",
      "FROM ${BASE} AS a",
      "from node",
      "WORKDIR app",
      "RUN apt-get update && apt-get install curl | tee /tmp/log",
      "ADD . /app",
      "RUN npm install --no-fund express",
      "COPY --from=nowhere /x /y",
      "CMD node a.js",
      "CMD node b.js",
      "USER root",
    ].join("\n");
    const found = lint(bad).join("\n");
    for (const id of ["DL3007", "DL3006", "DL3000", "DL3014", "DL3015", "DL3008", "DL3009", "DL4006", "DL3020", "DL3022", "DL3025", "DL3002", "DL3016"]) {
      expect(found).toContain(id);
    }
    expect(found).toMatch(/uppercase/);
    expect(found).toMatch(/only be one CMD/);
  });
});
