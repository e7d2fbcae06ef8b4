/**
 * The client type is structural (issue 12.6): an `openai` client from another copy of the
 * package (same methods, other private fields: another class to TypeScript) type-checks as
 * `ClientLike`, and runs. `tsc` checks this file (`npm run typecheck`); vitest runs it.
 */
import OpenAI, { AzureOpenAI } from "openai";
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  type ClientLike,
  type OpenAIResponsesLike,
  type StartRunOptions,
  startRun,
} from "../../src/index.js";
import { emulatorFor } from "../support/run-harness.js";

/** What a second copy's `APIPromise` looks like: the same methods, a private field of its own. */
interface Inner<T> {
  then: PromiseLike<T>["then"];
  asResponse(): Promise<Response>;
  withResponse(): Promise<{ data: T; response: Response }>;
}

class ForeignAPIPromise<T> implements PromiseLike<T> {
  readonly #inner: Inner<T>;
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: a second copy's own private field
  private readonly copy = "second";
  constructor(inner: unknown) {
    this.#inner = inner as Inner<T>;
  }
  // biome-ignore lint/suspicious/noThenProperty: a promise-like, as the SDK's APIPromise is
  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): PromiseLike<A | B> {
    return this.#inner.then(onfulfilled, onrejected);
  }
  asResponse(): Promise<Response> {
    return this.#inner.asResponse();
  }
  withResponse(): Promise<{ data: T; response: Response }> {
    return this.#inner.withResponse();
  }
}

interface ForeignRequestOptions {
  maxRetries?: number;
  signal?: AbortSignal | null;
  fetchOptions?: RequestInit;
  timeout?: number;
}

/** A second copy's `Responses` resource: the methods baton calls, its own protected client. */
class ForeignResponses {
  readonly #real: OpenAI["responses"];
  protected _client: ForeignOpenAI;
  constructor(client: ForeignOpenAI, real: OpenAI) {
    this._client = client;
    this.#real = real.responses;
  }
  create(
    body: { model: string; input?: unknown; stream?: boolean | null; [field: string]: unknown },
    options?: ForeignRequestOptions,
  ): ForeignAPIPromise<unknown> {
    return new ForeignAPIPromise(this.#real.create(body as never, options as never));
  }
  retrieve(
    responseID: string,
    query?: { stream?: boolean; starting_after?: number; include?: string[] },
    options?: ForeignRequestOptions,
  ): ForeignAPIPromise<unknown> {
    return new ForeignAPIPromise(this.#real.retrieve(responseID, query as never, options as never));
  }
  cancel(responseID: string, options?: ForeignRequestOptions): ForeignAPIPromise<unknown> {
    return new ForeignAPIPromise(this.#real.cancel(responseID, options as never));
  }
}

/** `new OpenAI()` of another copy of the package, as TypeScript sees it. */
class ForeignOpenAI {
  readonly #options: { apiKey: string };
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: a second copy's own private field
  private readonly _version = "6.0.0-other";
  protected idempotencyHeader?: string;
  apiKey: string;
  responses: ForeignResponses;
  constructor(options: { baseURL: string; apiKey: string }) {
    this.#options = options;
    this.apiKey = this.#options.apiKey;
    this.responses = new ForeignResponses(this, new OpenAI(options));
  }
}

it("type-checks: OpenAI, AzureOpenAI and another copy's OpenAI are a ClientLike", () => {
  // Each line is an assignment that tsc must accept (npm run typecheck); at run time, a no-op.
  const options = { baseURL: "http://127.0.0.1:1/v1", apiKey: "sk-types-000000" };
  const ours: ClientLike = new OpenAI(options);
  const azure: ClientLike = new AzureOpenAI({ ...options, apiVersion: "2025-04-01-preview" });
  const foreign: ClientLike = new ForeignOpenAI(options);
  const foreignPort: OpenAIResponsesLike = new ForeignOpenAI(options);
  const inStartRun: Pick<StartRunOptions, "client"> = { client: new ForeignOpenAI(options) };
  // The type this replaces: the class's private fields made the second copy another type.
  // @ts-expect-error `Pick<OpenAI, "responses">` refuses a client from another copy of openai
  const before: Pick<OpenAI, "responses"> = new ForeignOpenAI(options);
  for (const client of [ours, azure, foreign, foreignPort, inStartRun.client, before]) {
    expect("responses" in client).toBe(true);
  }
});

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
});

it("a client from another copy of openai runs a streamed and a polled run", async () => {
  emulator = await emulatorFor();
  for (const stream of [true, false]) {
    const run = startRun({
      client: new ForeignOpenAI({ baseURL: emulator.url, apiKey: "sk-local-000000" }),
      model: "o3",
      input: "x",
      stream,
      options: { pollIntervalMs: 5 },
    });
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(result.text.length).toBeGreaterThan(0);
  }
});
