import { describe, expect, it } from "vitest";
import path from "node:path";
import { AdapterSet, parseAdapterSpec, toAdapter } from "../../src/router/adapters.js";
import { loadConfig } from "../../src/config/load.js";
import { thrownAsHttp } from "../helpers/errors.js";

const abs = (p: string) => path.resolve(p);

describe("AdapterSet", () => {
  const set = () => new AdapterSet(["pirate=models/pirate.gguf", { path: "models/parrot.gguf", scale: 0.5 }, { id: "twin", path: "models/pirate.gguf", scale: 2 }]);

  it("takes model.lora entries as [id=]path strings or specs, ids defaulting to the file name", () => {
    expect(set().list()).toEqual([
      { id: "pirate", path: abs("models/pirate.gguf"), scale: 1 },
      { id: "parrot", path: abs("models/parrot.gguf"), scale: 0.5 },
      { id: "twin", path: abs("models/pirate.gguf"), scale: 2 },
    ]);
    expect(parseAdapterSpec("a.gguf")).toEqual({ path: "a.gguf" });
    expect(thrownAsHttp(() => toAdapter({ id: "bad:id", path: "x.gguf" }))).toMatchObject({ status: 400, message: expect.stringMatching(/^Adapter id/) });
    expect(thrownAsHttp(() => new AdapterSet(["pirate=a.gguf", "pirate=b.gguf"]))).toMatchObject({ status: 409, message: expect.stringMatching(/already has an adapter 'pirate'/) });
  });

  it("selects by name, index or `name`, at the configured scale unless the entry gives one; unnamed adapters are off", () => {
    const s = set();
    expect(s.select("m", "m", undefined)).toEqual([]);
    expect(s.select("m", "m", [{ id: "parrot" }])).toEqual([{ path: abs("models/parrot.gguf"), scale: 0.5 }]);
    expect(s.select("m", undefined, [{ id: 1, scale: 0.25 }, { name: "pirate" }])).toEqual([
      { path: abs("models/parrot.gguf"), scale: 0.25 },
      { path: abs("models/pirate.gguf"), scale: 1 },
    ]);
    expect(s.select("m", "m", [{ id: "pirate", scale: 0 }])).toEqual([]);
  });

  it("selects the adapter a <model>:<adapter> id names, which a lora entry can rescale; one file is one adapter", () => {
    const s = set();
    expect(s.byModelId("m", "m:parrot")?.id).toBe("parrot");
    expect(s.byModelId("m", "m")).toBeUndefined();
    expect(s.byModelId("m", "other:parrot")).toBeUndefined();
    expect(s.select("m", "m:parrot", undefined)).toEqual([{ path: abs("models/parrot.gguf"), scale: 0.5 }]);
    expect(s.select("m", "m:parrot", [{ id: "parrot", scale: 3 }])).toEqual([{ path: abs("models/parrot.gguf"), scale: 3 }]);
    // pirate and twin are the same file: the later entry's scale wins.
    expect(s.select("m", "m:pirate", [{ id: "twin" }])).toEqual([{ path: abs("models/pirate.gguf"), scale: 2 }]);
  });

  it("refuses unknown adapters and entries without an id as 400s on param lora", () => {
    const s = set();
    for (const lora of [[{ id: "nope" }], [{ id: 3 }], [{ scale: 1 }]]) {
      expect(thrownAsHttp(() => s.select("m", "m", lora))).toMatchObject({ status: 400, param: "lora" });
    }
  });

  it("adds and removes adapters; ids stay unique", () => {
    const s = set();
    s.add(toAdapter({ id: "new", path: "x.gguf" }));
    expect(thrownAsHttp(() => s.add(toAdapter({ id: "new", path: "y.gguf" })))).toMatchObject({ status: 409 });
    expect(s.remove("parrot")?.id).toBe("parrot");
    expect(s.remove("parrot")).toBeUndefined();
    expect(s.list().map((a) => a.id)).toEqual(["pirate", "twin", "new"]);
    expect(s.paths()).toEqual([abs("models/pirate.gguf"), abs("x.gguf")]);
  });
});

describe("model.lora config", () => {
  it("accepts --lora strings (as the CLI sets them) and YAML objects, and defaults to none", () => {
    expect(loadConfig({}, {}).model.lora).toEqual([]);
    expect(loadConfig({ set: { "model.lora": ["pirate=a.gguf", "b.gguf"] } }, {}).model.lora).toEqual(["pirate=a.gguf", "b.gguf"]);
    expect(loadConfig({}, { EDGELLM_MODEL_LORA: "pirate=a.gguf,b.gguf" }).model.lora).toEqual(["pirate=a.gguf", "b.gguf"]);
    expect(() => loadConfig({ set: { "model.lora": [{ path: "a.gguf", weight: 1 }] } }, {})).toThrow();
  });
});
