import { defineConfig } from "prisma/config";

// Prisma 7 standard form. The CLI is used only for `generate` here (engine binaries cannot be
// downloaded on our machines); migrations are applied by `gerbang migrate` (src/db/migrate.ts),
// which is compatible with `prisma migrate deploy` for anyone who has the engines.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/gerbang" },
});
