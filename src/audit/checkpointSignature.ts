import { CompactSign, compactVerify, importJWK, type JWK } from "jose";
import type { SigningKey } from "../identity/signingKey.ts";

/** Signs checkpoint payloads with the gateway's identity key (the key upstreams already trust). */
export function checkpointSigner(key: SigningKey): (payload: string) => Promise<{ kid: string; signature: string }> {
  return async (payload) => ({
    kid: key.kid,
    signature: await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: key.algorithm, kid: key.kid }).sign(key.privateKey),
  });
}

/** True when `signature` is a JWS of exactly `payload` by `publicJwk`. */
export async function checkpointSignedBy(publicJwk: JWK, signature: string, payload: string): Promise<boolean> {
  try {
    const key = await importJWK(publicJwk, publicJwk.alg);
    const { payload: signed } = await compactVerify(signature, key);
    return new TextDecoder().decode(signed) === payload;
  } catch {
    return false;
  }
}
