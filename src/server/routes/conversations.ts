/**
 * /v1/conversations: the playground's stored conversations, after OpenAI's Conversations API
 * (create, retrieve, update metadata, delete; list, add, retrieve and delete items), plus what
 * the page needs beyond it: listing the conversations and exporting one with all its items.
 */
import type { FastifyPluginAsync } from "fastify";
import type { StoreDeps } from "../deps.js";
import { ApiError } from "../../openai/errors.js";
import { ConversationStore, page, type ListOptions } from "../../conversations/store.js";
import { AddItems, CreateConversation, ListQuery, UpdateConversation } from "../../openai/conversation-schema.js";

const conversationNotFound = (id: string) =>
  new ApiError(404, "not_found_error", `No conversation found with id '${id}'`, { param: "conversation_id", code: "conversation_not_found" });

const itemNotFound = (id: string) =>
  new ApiError(404, "not_found_error", `No item found with id '${id}'`, { param: "item_id", code: "item_not_found" });

function found<T>(value: T | undefined, id: string, notFound: (id: string) => ApiError = conversationNotFound): T {
  if (value === undefined) throw notFound(id);
  return value;
}

/** OpenAI's defaults: 20 per page, newest first. */
const listOptions = (q: ListQuery): ListOptions => ({ limit: Number(q.limit ?? 20), order: q.order ?? "desc", ...(q.after !== undefined && { after: q.after }) });

type Params = { id: string };
type ItemParams = Params & { item_id: string };

export const conversationRoutes: FastifyPluginAsync<StoreDeps> = async (app, { db }) => {
  const store = new ConversationStore(db);

  app.get<{ Querystring: ListQuery }>("/v1/conversations", { schema: { querystring: ListQuery } }, async (req) => store.list(listOptions(req.query)));

  app.post<{ Body: CreateConversation }>("/v1/conversations", { schema: { body: CreateConversation } }, async (req) =>
    store.create(req.body?.metadata ?? {}, req.body?.items ?? []),
  );

  app.get<{ Params: Params }>("/v1/conversations/:id", async (req) => found(store.get(req.params.id), req.params.id));

  app.post<{ Params: Params; Body: UpdateConversation }>("/v1/conversations/:id", { schema: { body: UpdateConversation } }, async (req) =>
    found(store.update(req.params.id, req.body.metadata), req.params.id),
  );

  app.delete<{ Params: Params }>("/v1/conversations/:id", async (req) => {
    if (!store.delete(req.params.id)) throw conversationNotFound(req.params.id);
    return { id: req.params.id, object: "conversation.deleted", deleted: true };
  });

  app.get<{ Params: Params }>("/v1/conversations/:id/export", async (req, reply) => {
    const { id } = req.params;
    const conversation = found(store.get(id), id);
    reply.header("content-disposition", `attachment; filename="${id}.json"`);
    return { ...conversation, items: found(store.allItems(id), id) };
  });

  app.get<{ Params: Params; Querystring: ListQuery }>("/v1/conversations/:id/items", { schema: { querystring: ListQuery } }, async (req) =>
    found(store.listItems(req.params.id, listOptions(req.query)), req.params.id),
  );

  app.post<{ Params: Params; Body: AddItems }>("/v1/conversations/:id/items", { schema: { body: AddItems } }, async (req) => {
    const data = found(store.addItems(req.params.id, req.body.items), req.params.id);
    return page(data, data.length);
  });

  app.get<{ Params: ItemParams }>("/v1/conversations/:id/items/:item_id", async (req) => {
    found(store.get(req.params.id), req.params.id);
    return found(store.getItem(req.params.id, req.params.item_id), req.params.item_id, itemNotFound);
  });

  /** Like OpenAI, answers with the conversation the item was removed from. */
  app.delete<{ Params: ItemParams }>("/v1/conversations/:id/items/:item_id", async (req) => {
    const conversation = found(store.get(req.params.id), req.params.id);
    if (!store.deleteItem(req.params.id, req.params.item_id)) throw itemNotFound(req.params.item_id);
    return conversation;
  });
};
