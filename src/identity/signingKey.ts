import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type JWK } from "jose";
import { createPublicKey, type KeyObject, type webcrypto } from "node:crypto";

export type SigningAlgorithm = "EdDSA" | "ES256";

export interface SigningKey {
  algorithm: SigningAlgorithm;
  kid: string;
  privateKey: webcrypto.CryptoKey | KeyObject;
  publicJwk: JWK;
}

/**
 * Loads the PKCS#8 signing key, or generates one into dataDir on first start (mode 0600). Several
 * instances must share the key (set identity.privateKeyFile) so any of them can be verified with
 * the same JWKS.
 */
export async function loadSigningKey(options: { algorithm: SigningAlgorithm; file?: string; dataDir: string }): Promise<SigningKey> {
  const file = options.file ?? join(options.dataDir, `identity-${options.algorithm.toLowerCase()}.pem`);
  let pem: string;
  if (existsSync(file)) {
    pem = readFileSync(file, "utf8");
  } else if (options.file !== undefined) {
    throw new Error(`identity.privateKeyFile ${file} does not exist`);
  } else {
    const pair = await generateKeyPair(options.algorithm, options.algorithm === "EdDSA" ? { crv: "Ed25519", extractable: true } : { extractable: true });
    pem = await exportPKCS8(pair.privateKey);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, pem, { mode: 0o600 });
  }
  const privateKey = await importPKCS8(pem, options.algorithm, { extractable: true });
  const publicJwk = await exportJWK(createPublicKey(pem));
  const kid = await calculateJwkThumbprint(publicJwk);
  return { algorithm: options.algorithm, kid, privateKey, publicJwk: { ...publicJwk, kid, alg: options.algorithm, use: "sig" } };
}

/** Where the configuration keeps the identity key (identity.privateKeyFile, or generated into dataDir). */
export const signingKeyOptionsOf = (config: { identity: { algorithm: SigningAlgorithm; privateKeyFile?: string | undefined }; dataDir: string }): { algorithm: SigningAlgorithm; file?: string; dataDir: string } => ({
  algorithm: config.identity.algorithm,
  ...(config.identity.privateKeyFile === undefined ? {} : { file: config.identity.privateKeyFile }),
  dataDir: resolve(config.dataDir),
});

/** The configured signing key if it exists, never generating one (the CLI signs only with the gateway's key). */
export async function readSigningKey(options: { algorithm: SigningAlgorithm; file?: string; dataDir: string }): Promise<SigningKey | null> {
  const file = options.file ?? join(options.dataDir, `identity-${options.algorithm.toLowerCase()}.pem`);
  return existsSync(file) ? loadSigningKey({ ...options, file }) : null;
}
