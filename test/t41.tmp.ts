import { scriptedModel } from "/work/main/test/helpers/models.js";
import { spawnCli, waitHealthy } from "/work/main/test/helpers/cli.js";
import { openStream, untilContent } from "/work/main/test/helpers/stream.js";
const m = await scriptedModel(["one two three four five six seven eight nine ten "], { loop: true });
const times: number[] = [];
for (let i = 0; i < Number(process.argv[2] ?? 10); i++) {
  const cli = spawnCli(["--model", m, "--alias", "m", "--port", "0", "--ctx-size", "1024", "--parallel", "2", "--threads", "2", "--set", "server.shutdownGraceMs=300"]);
  const url = await cli.url; await waitHealthy(url);
  const s = await openStream(`${url}/v1/chat/completions`, { model: "m", messages: [{ role: "user", content: "count" }], stream: true, max_tokens: 1000 });
  await untilContent(s);
  const t = Date.now(); cli.child.kill("SIGTERM");
  await s.rest().catch(() => {});
  const e = await cli.exit; times.push(Date.now() - t);
  console.log(i, Date.now() - t, JSON.stringify(e), /SIGKILL|worker/.test(cli.stdout()) ? "" : "");
}
console.log(times.join(" "));
