// Container HEALTHCHECK: exit 0 when /health answers 200 (model loaded, worker up, not draining).
// Node instead of curl keeps curl and its dependencies out of the image.
const port = process.env.EDGELLM_SERVER_PORT || "8080";
try {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
