import type { AdminEndpoint } from "./adminEndpointFile.ts";
import { OperationError } from "./operationError.ts";
import type { OperationInput, OperationName, OperationOutput } from "./operations.ts";

/** The endpoint file named a gateway that refused the connection: it stopped without removing the file. Nothing was sent. */
export class GatewayUnreachable extends Error {
  constructor(url: string) {
    super(`no gateway answers at ${url}`);
    this.name = "GatewayUnreachable";
  }
}

/** Asks the running gateway to carry out an operation; its refusals come back as OperationError. */
export async function callAdmin<N extends OperationName>(endpoint: AdminEndpoint, name: N, input: OperationInput<N>): Promise<OperationOutput<N>> {
  let response: Response;
  try {
    response = await fetch(`${endpoint.url}/operations/${name}`, {
      method: "POST",
      headers: { authorization: `Bearer ${endpoint.token}`, "content-type": "application/json" },
      body: JSON.stringify(input),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    // Only a refused connection proves the request never arrived; after a timeout or a reset the
    // gateway may have done the work, and doing it again here could, say, issue a second key.
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === "ECONNREFUSED") throw new GatewayUnreachable(endpoint.url);
    throw new Error(`the running gateway did not answer (${code ?? (error as Error).name}); whether ${name} took effect is unknown: check with gerbang users show / keys list`);
  }
  const body = (await response.json().catch(() => null)) as { result?: OperationOutput<N>; error?: { message?: string } } | null;
  if (response.status === 200 && body !== null && "result" in body) return body.result as OperationOutput<N>;
  const message = body?.error?.message ?? `answered ${response.status}`;
  if (response.status === 422) throw new OperationError(message);
  throw new Error(`the running gateway: ${message}`);
}
