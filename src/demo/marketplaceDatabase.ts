// The demo marketplace's tables (prisma/marketplace): where the demo upstream keeps its data when it
// is given a database, so a gateway can read ownership from them with the Prisma resolver and the
// listings select rows with gerbang/upstream's prismaWhere. The upstream stays the only writer.
import { fileURLToPath } from "node:url";
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/marketplace/client.ts";
import { migrate } from "../db/migrate.ts";
import { pgExecutor } from "../db/sqlExecutor.ts";
import type { InventoryItem, Order, OrderStatus, Product, Shop } from "./upstream.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("../../prisma/marketplace/migrations", import.meta.url));

export interface MarketplaceData {
  shops: Shop[];
  products: Product[];
  orders: Order[];
  inventory: InventoryItem[];
}

export interface MarketplaceDatabase {
  prisma: PrismaClient;
  /** Everything stored, for the upstream's start. */
  load(): Promise<MarketplaceData>;
  /** Replaces the collections present in `data`, in one transaction. */
  replace(data: Partial<MarketplaceData>): Promise<void>;
  close(): Promise<void>;
}

/** Opens (and migrates) the marketplace database at `url`. */
export async function openMarketplaceDatabase(url: string): Promise<MarketplaceDatabase> {
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  pool.on("error", () => undefined);
  try {
    await migrate(pgExecutor(pool), { migrationsDir: MIGRATIONS_DIR });
  } catch (error) {
    await pool.end();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    prisma,
    async load() {
      const [shops, products, orders, inventory] = await Promise.all([prisma.shop.findMany(), prisma.product.findMany(), prisma.order.findMany(), prisma.inventory.findMany()]);
      return {
        shops: shops.map((s) => ({ ...s, region: s.region ?? "global" })),
        products,
        orders: orders.map((o) => ({ ...o, region: o.region ?? "global", status: o.status as OrderStatus, shippingAddress: o.shippingAddress ?? "" })),
        inventory,
      };
    },
    async replace(data) {
      await prisma.$transaction(async (tx) => {
        // Children first: the tables have no foreign keys, but the order reads as the data does.
        if (data.inventory) await tx.inventory.deleteMany();
        if (data.orders) await tx.order.deleteMany();
        if (data.products) await tx.product.deleteMany();
        if (data.shops) await tx.shop.deleteMany();
        if (data.shops) await tx.shop.createMany({ data: data.shops });
        if (data.products) await tx.product.createMany({ data: data.products });
        if (data.orders) await tx.order.createMany({ data: data.orders });
        if (data.inventory) await tx.inventory.createMany({ data: data.inventory });
      });
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
