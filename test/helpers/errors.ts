import { asHttpError } from "../../src/server/engine-errors.js";

/** What `fn` throws, as the HTTP error a client would receive. */
export function thrownAsHttp(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return asHttpError(err);
  }
  throw new Error("expected a throw");
}
