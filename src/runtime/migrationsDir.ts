import { fileURLToPath } from "node:url";

/** prisma/migrations of this package, wherever it is run from. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../prisma/migrations", import.meta.url));
export const PACKAGE_ROOT = fileURLToPath(new URL("../..", import.meta.url));
