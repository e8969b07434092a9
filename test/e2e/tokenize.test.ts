/** llama-server's /tokenize, /detokenize and /apply-template on the real server and worker. */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { tinyModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("tokenizer routes", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await tinyModel());
  });
  afterAll(() => server?.stop());

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("tokenize then detokenize gives the text back exactly, special tokens included", async () => {
    const text = "Grüße, edge! <|im_start|>user\n 1234 😀";
    const tok = await post("/tokenize", { content: text });
    expect(tok.status).toBe(200);
    const tokens = tok.body.tokens as number[];
    expect(tokens.length).toBeGreaterThan(5);
    expect(tokens).toContain(151644); // <|im_start|> parsed as the one special token
    const detok = await post("/detokenize", { tokens, model: server.modelId });
    expect(detok).toEqual({ status: 200, body: { content: text } });
  });

  it("parse_special: false tokenizes special-token text as plain characters", async () => {
    const { body } = await post("/tokenize", { content: "<|im_start|>", parse_special: false });
    expect((body.tokens as number[]).length).toBeGreaterThan(1);
    expect(body.tokens).not.toContain(151644);
  });

  it("with_pieces returns each id with its text piece", async () => {
    const { body } = await post("/tokenize", { content: "hello world", with_pieces: true });
    const pieces = body.tokens as Array<{ id: number; piece: string }>;
    expect(pieces.map((p) => p.piece).join("")).toBe("hello world");
    expect(pieces.every((p) => Number.isInteger(p.id))).toBe(true);
  });

  it("apply-template renders the model's chat template with the generation prompt", async () => {
    const { status, body } = await post("/apply-template", {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi there" },
      ],
      chat_template_kwargs: { enable_thinking: false },
    });
    expect(status).toBe(200);
    const prompt = body.prompt as string;
    expect(prompt).toContain("<|im_start|>system\nBe brief.<|im_end|>");
    expect(prompt).toContain("<|im_start|>user\nHi there<|im_end|>");
    expect(prompt.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n")).toBe(true);
  });

  it("bad input is an OpenAI error object: token ids past the vocabulary, wrong types, unknown model", async () => {
    const past = await post("/detokenize", { tokens: [1, 10_000_000] });
    expect(past.status).toBe(400);
    expect(past.body.error).toMatchObject({ type: "invalid_request_error", param: "tokens", code: "invalid_token" });
    const negative = await post("/detokenize", { tokens: [-1] });
    expect(negative.status).toBe(400);
    expect((negative.body.error as { param: string }).param).toMatch(/tokens/);
    const noContent = await post("/tokenize", { text: "x" });
    expect(noContent.status).toBe(400);
    expect((noContent.body.error as { param: string }).param).toMatch(/content/);
    const unknown = await post("/tokenize", { content: "x", model: "nope" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: "model_not_found" });
    // The worker is still serving after the bad ids.
    expect((await post("/detokenize", { tokens: [] })).body).toEqual({ content: "" });
  });
});
