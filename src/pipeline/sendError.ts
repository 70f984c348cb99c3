import type { FastifyReply, FastifyRequest } from "fastify";
import { errorBody, type GerbangError } from "../errors/catalogue.ts";

/** The one place a gateway error becomes a response: JSON body, catalogue status, safe headers. */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: GerbangError): void {
  if (request.gerbang !== undefined && request.gerbang !== null) {
    request.gerbang.errorCode = error.code;
    if (error.reason !== undefined) request.gerbang.errorReason = error.reason;
  }
  void reply
    .code(error.status)
    .headers({ ...error.headers, "cache-control": "no-store", "content-type": "application/json; charset=utf-8" })
    .send(errorBody(error, request.id));
}
